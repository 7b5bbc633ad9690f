// Site-wide behaviour without inline handlers (the Content-Security-Policy allows none):
// choosing a language in the header menu submits its form.
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
