"""Yanks recorded before they went through registry.services.set_withdrawn (`metadata["yanked"]`)
become withdrawals (`metadata["withdrawn"]` and a `withdrawals` entry), what the format reads now."""

from django.db import migrations

FORMAT = "rubygems"


def forwards(apps, schema_editor):
    PackageVersion = apps.get_model("registry", "PackageVersion")
    for row in PackageVersion.objects.filter(package__format=FORMAT, metadata__has_key="yanked").iterator():
        metadata = dict(row.metadata)
        if metadata.pop("yanked") and "withdrawn" not in metadata:
            entry = {"reason": "", "by": "", "at": row.updated_at.isoformat()}
            metadata["withdrawn"] = entry
            metadata["withdrawals"] = [*(metadata.get("withdrawals") or []), {"action": "yank", **entry}]
        row.metadata = metadata
        row.save(update_fields=["metadata"])


def backwards(apps, schema_editor):
    PackageVersion = apps.get_model("registry", "PackageVersion")
    for row in PackageVersion.objects.filter(package__format=FORMAT, metadata__has_key="withdrawn").iterator():
        row.metadata = {**row.metadata, "yanked": True}
        row.save(update_fields=["metadata"])


class Migration(migrations.Migration):
    dependencies = [("registry", "0008_virtual_upstream_rules")]

    operations = [migrations.RunPython(forwards, backwards)]
