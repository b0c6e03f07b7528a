"""Cargo and RubyGems yanks made before they went through registry.services.set_withdrawn
(`metadata["yanked"]`) read as withdrawals after the formats' migrations."""

import importlib

import pytest
from django.apps import apps

from registry.models import Package, PackageVersion
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def version(fmt, number, metadata):
    project = ProjectFactory()
    package, _ = Package.objects.get_or_create(project=project, format=fmt, name="old", normalized_name="old")
    return PackageVersion.objects.create(package=package, version=number, normalized_version=number, metadata=metadata)


@pytest.mark.parametrize("fmt", ["cargo", "rubygems"])
def test_old_yanks_become_withdrawals(fmt):
    migration = importlib.import_module(f"packages_{fmt}.migrations.0001_yanked_through_withdrawal")
    yanked = version(fmt, "1.0.0", {"deps": [], "yanked": True})
    unyanked = version(fmt, "1.1.0", {"yanked": False})
    other = version("npm", "1.0.0", {"yanked": True})

    migration.forwards(apps, None)
    yanked.refresh_from_db()
    assert yanked.metadata["deps"] == [] and "yanked" not in yanked.metadata
    assert yanked.metadata["withdrawn"]["reason"] == ""
    assert [entry["action"] for entry in yanked.metadata["withdrawals"]] == ["yank"]
    assert PackageVersion.objects.get(pk=unyanked.pk).metadata == {}
    assert PackageVersion.objects.get(pk=other.pk).metadata == {"yanked": True}

    migration.backwards(apps, None)
    yanked.refresh_from_db()
    assert yanked.metadata["yanked"] is True
