"""Module zips in the layout the go command caches and the GOPROXY protocol serves: every file
under `<module>@<version>/`, the module's go.mod at its root. Built in memory."""

import io
import zipfile

GREET = 'package greet\n\nfunc Hello() string {{ return "{greeting}" }}\n'


def module_zip(module="example.com/acme/greet", version="v1.0.0", greeting="hello", files=None, go_mod=None):
    package = module.rsplit("/", 1)[-1].lower()
    if package.startswith("v") and package[1:].isdigit():
        package = module.rsplit("/", 2)[-2].lower()
    members = (
        files
        if files is not None
        else {
            "go.mod": go_mod if go_mod is not None else f"module {module}\n\ngo 1.19\n",
            f"{package}.go": GREET.replace("package greet", f"package {package}").format(greeting=greeting),
        }
    )
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in members.items():
            name = path if path.startswith("/") or "@" in path else f"{module}@{version}/{path}"
            archive.writestr(name, text)
    return raw.getvalue()
