"""The admin area's pages at GitLab's paths (`/admin/users`). Mounted before the Django admin
(`/admin/`), whose catch-all would otherwise answer them."""

from django.urls import path

from web import admin_pages

app_name = "admin_area"

urlpatterns = [
    path("admin/users", admin_pages.users, name="users"),
    path("admin/users/new", admin_pages.new_user, name="new_user"),
    path(
        "admin/users/<int:user_id>/<str:action>",
        admin_pages.user_action,
        name="user_action",
    ),
]
