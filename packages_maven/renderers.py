"""maven-metadata.xml generated from known versions (group and instance endpoints)."""

from django.template.loader import render_to_string

from packages_maven.parsers import artifact_coordinates


def artifact_metadata(name, versions):
    """`versions`: [(version, published_at)] oldest first, each version once.

    `latest` is the newest published version, `release` the newest non-SNAPSHOT one, as
    maven-deploy-plugin writes them; `lastUpdated` the newest publish time (UTC).
    """
    group_id, artifact_id = artifact_coordinates(name)
    releases = [v for v, _ in versions if not v.endswith("-SNAPSHOT")]
    return render_to_string(
        "packages_maven/maven-metadata.xml",
        {
            "group_id": group_id,
            "artifact_id": artifact_id,
            "versions": [v for v, _ in versions],
            "latest": versions[-1][0],
            "release": releases[-1] if releases else "",
            "last_updated": versions[-1][1].strftime("%Y%m%d%H%M%S"),
        },
    )
