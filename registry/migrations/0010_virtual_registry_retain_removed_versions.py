from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0009_upstream_file_hosts"),
    ]

    operations = [
        migrations.AddField(
            model_name="virtualregistry",
            name="retain_removed_versions",
            field=models.BooleanField(default=False),
        ),
    ]
