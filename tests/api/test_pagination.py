"""GitLab offset pagination on every list: a page past the end is empty, never an error."""

import pytest

from tests.factories import AccessTokenFactory, AdminFactory, ProjectFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("page", ["100000000000000000000", "3"])
def test_a_page_past_the_end_is_empty(client, page):
    ProjectFactory()
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext)
    response = client.get(f"/api/v4/projects?page={page}", **admin)
    assert response.status_code == 200
    assert response.json() == []
    assert response["X-Total"] == "1" and response["X-Next-Page"] == ""


@pytest.mark.parametrize("page", ["２", "-1", "x"])
def test_a_page_that_is_no_number_is_the_first(client, page):
    ProjectFactory()
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext)
    response = client.get(f"/api/v4/projects?page={page}", **admin)
    assert response.status_code == 200
    assert len(response.json()) == 1 and response["X-Page"] == "1"
