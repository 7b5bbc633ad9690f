// Keyboard-first rating: number keys rate the highlighted scale and move on, Enter submits,
// Backspace (or ← outside a scale) goes to the previous item. The page works without this file.
(function () {
  "use strict";
  var form = document.getElementById("rate-form");
  if (!form) return;
  var started = performance.now();
  var groups = Array.prototype.slice.call(form.querySelectorAll("fieldset.scale"));
  var submitButton = document.getElementById("submit-btn");
  var live = document.getElementById("key-status");
  var texts = document.getElementById("rate-messages").dataset;
  var current = 0;

  function isSet(group) { return group.querySelector("input:checked") !== null; }
  function firstUnset() {
    for (var i = 0; i < groups.length; i++) { if (!isSet(groups[i])) return i; }
    return -1;
  }
  function highlight(index) {
    current = index;
    groups.forEach(function (g, j) { g.classList.toggle("current", j === index); });
  }
  function focusGroup(index, stayPut) {
    var group = groups[index];
    var radio = group.querySelector("input:checked") || group.querySelector("input");
    radio.focus({ preventScroll: !!stayPut });
    highlight(index);
  }
  function announce(text) { live.textContent = ""; window.setTimeout(function () { live.textContent = text; }, 30); }
  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable ||
      (el.tagName === "INPUT" && el.type !== "radio" && el.type !== "checkbox"));
  }
  function goPrevious() {
    var prev = document.getElementById("prev-link");
    if (prev) window.location.assign(prev.href);
  }

  groups.forEach(function (g, i) {
    g.addEventListener("focusin", function () { highlight(i); });
    g.addEventListener("click", function () { highlight(i); });
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || isTyping(ev.target)) return;
    if (/^[0-9]$/.test(ev.key) && current >= 0 && current < groups.length) {
      var radio = groups[current].querySelector('input[value="' + ev.key + '"]');
      if (!radio) return;
      ev.preventDefault();
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      var label = groups[current].querySelector("legend").textContent;
      announce(label + ": " + ev.key);
      // Move on in order; after the last scale go to the first unrated one, else to Submit.
      var next = current + 1 < groups.length ? current + 1 : firstUnset();
      if (next >= 0) { focusGroup(next); } else { highlight(-1); submitButton.focus(); }
    } else if (ev.key === "Enter") {
      var tag = ev.target.tagName;
      if (tag === "A" || tag === "SUMMARY" || (tag === "BUTTON" && ev.target !== submitButton)) return;
      ev.preventDefault();
      var missing = firstUnset();
      if (missing >= 0) { focusGroup(missing); announce(texts.unset); return; }
      form.requestSubmit(submitButton);
    } else if (ev.key === "Backspace" || (ev.key === "ArrowLeft" && ev.target.type !== "radio")) {
      if (document.getElementById("prev-link")) { ev.preventDefault(); goPrevious(); }
    }
  });

  form.addEventListener("submit", function (ev) {
    var submitter = ev.submitter;
    var action = submitter ? submitter.value : "submit";
    if (action === "submit" && firstUnset() >= 0) {
      ev.preventDefault();
      focusGroup(firstUnset());
      announce(texts.unset);
      return;
    }
    if (form.dataset.sent === "1") { ev.preventDefault(); return; }  // double click
    form.dataset.sent = "1";
    document.getElementById("time_spent_ms").value = String(Math.round(performance.now() - started));
    announce(texts.saving);
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  // Start on the first unrated scale (or the first one when revisiting a rated item).
  if (groups.length) { focusGroup(Math.max(firstUnset(), 0), true); }
})();
