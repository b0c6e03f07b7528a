"""Group-level Cargo routes: a read-only index of every project under the group the caller may
pull from, and its downloads (by checksum: the index says which crate it listed)."""

from django.urls import re_path

from packages_cargo import views
from packages_cargo.urls_project import INDEX_FILE, NAME, VERSION

urlpatterns = [
    re_path(r"^index/config\.json$", views.GroupConfigView.as_view()),
    re_path(INDEX_FILE, views.GroupIndexFileView.as_view()),
    re_path(rf"^dl/{NAME}/{VERSION}/(?P<sha256>[0-9a-f]{{64}})$", views.GroupDownloadView.as_view()),
]
