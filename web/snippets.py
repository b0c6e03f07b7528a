"""Install snippets per format, filled with this server's URL and the project id (seed 002)."""


def install_snippets(fmt, base, project, name, version, file_names=()):
    """A list of (title, text) for the package detail page."""
    api = f"{base}/api/v4/projects/{project.pk}/packages"
    host_path = base.split("://", 1)[-1]
    if fmt == "npm":
        scope = name.split("/", 1)[0] if name.startswith("@") else "@scope"
        return [
            (
                ".npmrc",
                f"{scope}:registry={api}/npm/\n"
                f"//{host_path}/api/v4/projects/{project.pk}/packages/npm/:_authToken=${{TOKEN}}",
            ),
            ("npm install", f"npm install {name}@{version}"),
        ]
    if fmt == "pypi":
        scheme = base.split("://", 1)[0]
        index = f"{scheme}://__token__:${{TOKEN}}@{host_path}/api/v4/projects/{project.pk}/packages/pypi/simple"
        return [
            ("pip.conf", f"[global]\nindex-url = {index}"),
            ("pip install", f"pip install --index-url {index} --no-deps {name}=={version}"),
        ]
    if fmt == "maven":
        group_id, _, artifact_id = name.rpartition("/")
        group_id = group_id.replace("/", ".") or "com.example"
        return [
            (
                "settings.xml",
                "<settings>\n  <servers>\n    <server>\n      <id>packhouse-maven</id>\n      <configuration>\n"
                "        <httpHeaders>\n          <property>\n            <name>Private-Token</name>\n"
                "            <value>${env.TOKEN}</value>\n          </property>\n        </httpHeaders>\n"
                "      </configuration>\n    </server>\n  </servers>\n</settings>",
            ),
            (
                "pom.xml",
                f"<repositories>\n  <repository>\n    <id>packhouse-maven</id>\n    <url>{api}/maven</url>\n"
                f"  </repository>\n</repositories>\n<dependency>\n  <groupId>{group_id}</groupId>\n"
                f"  <artifactId>{artifact_id}</artifactId>\n  <version>{version}</version>\n</dependency>",
            ),
        ]
    if fmt == "nuget":
        index = f"{api}/nuget/index.json"
        return [
            (
                "nuget.config",
                '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <packageSources>\n'
                f'    <add key="packhouse" value="{index}" />\n  </packageSources>\n  <packageSourceCredentials>\n'
                '    <packhouse>\n      <add key="Username" value="USERNAME" />\n'
                '      <add key="ClearTextPassword" value="${TOKEN}" />\n    </packhouse>\n'
                "  </packageSourceCredentials>\n</configuration>",
            ),
            (
                "dotnet nuget add source",
                f'dotnet nuget add source "{index}" --name packhouse --username USERNAME '
                "--password ${TOKEN} --store-password-in-clear-text\n"
                f"dotnet add package {name} --version {version} --source packhouse",
            ),
        ]
    file_name = file_names[0] if file_names else "file.tar.gz"
    return [
        (
            "curl",
            f'curl --header "PRIVATE-TOKEN: ${{TOKEN}}" \\\n  "{api}/generic/{name}/{version}/{file_name}" \\\n'
            f"  --output {file_name}",
        ),
        (
            "curl (upload)",
            f'curl --header "PRIVATE-TOKEN: ${{TOKEN}}" --upload-file {file_name} \\\n'
            f'  "{api}/generic/{name}/{version}/{file_name}"',
        ),
    ]
