"""The researcher pages render in Thai from locale/th (compiled django.mo)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_researcher_pages_render_in_thai(researcher_client: Client) -> None:
    upload_url = reverse("modeling:dataset_new")
    training_url = reverse("modeling:training_new")

    # Default language: English.
    english = researcher_client.get(upload_url).content.decode()
    assert "Upload and prepare" in english
    assert "Validation fraction" in english

    # Accept-Language header (LocaleMiddleware): template string and form label in Thai.
    response = researcher_client.get(upload_url, HTTP_ACCEPT_LANGUAGE="th")
    assert response.status_code == 200
    assert response["Content-Language"] == "th"
    page = response.content.decode()
    assert "อัปโหลดและเตรียมข้อมูล" in page
    assert "Upload and prepare" not in page
    assert "สัดส่วนชุดตรวจสอบ" in page
    assert "Validation fraction" not in page

    # The language switcher (set_language at /i18n/setlang/) stores the choice in a cookie.
    switched = researcher_client.post(reverse("set_language"), {"language": "th", "next": "/"})
    assert switched.status_code == 302
    assert researcher_client.cookies["django_language"].value == "th"
    response = researcher_client.get(training_url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "เริ่มรอบการฝึกใหม่" in page and "New training run" not in page
    assert "เริ่มการฝึก" in page and "Start training" not in page
    assert "อัตราการเรียนรู้" in page and "Learning rate" not in page
    assert "ไฮเปอร์พารามิเตอร์" in page and "Hyperparameters" not in page
