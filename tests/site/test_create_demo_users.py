from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from convgen_site.roles import is_rater, is_researcher


@pytest.mark.django_db
def test_it_creates_both_accounts_and_prints_working_credentials() -> None:
    out = StringIO()
    call_command("create_demo_users", stdout=out)
    rows = [line.split() for line in out.getvalue().splitlines()]
    lines = {parts[0]: (parts[2], parts[4]) for parts in rows}
    researcher = authenticate(username=lines["researcher"][0], password=lines["researcher"][1])
    rater = authenticate(username=lines["rater"][0], password=lines["rater"][1])
    assert researcher is not None and is_researcher(researcher)
    assert rater is not None and is_rater(rater) and not is_researcher(rater)
