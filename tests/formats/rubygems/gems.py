"""`.gem` files as `gem build` writes them, built in memory: a tar of metadata.gz (the YAML
specification), data.tar.gz and checksums.yaml.gz."""

import gzip
import io
import tarfile

SPEC = """--- !ruby/object:Gem::Specification
name: {name}
version: !ruby/object:Gem::Version
  version: {version}
platform: {platform}
authors:
- Dev
date: 2026-11-30 00:00:00.000000000 Z
dependencies:{dependencies}
description:
email: dev@example.com
homepage: https://example.com
licenses:
- MIT
metadata:
  source_code_uri: https://example.com/src
required_ruby_version: !ruby/object:Gem::Requirement
  requirements:
  - - ">="
    - !ruby/object:Gem::Version
      version: '2.7'
required_rubygems_version: !ruby/object:Gem::Requirement
  requirements:
  - - ">="
    - !ruby/object:Gem::Version
      version: '0'
rubygems_version: 3.3.15
specification_version: 4
summary: {name} summary
"""
DEPENDENCY = """- !ruby/object:Gem::Dependency
  name: {name}
  requirement: !ruby/object:Gem::Requirement
    requirements:
    - - "{operator}"
      - !ruby/object:Gem::Version
        version: '{version}'
  type: :{kind}
  prerelease: false
"""


def spec_yaml(name="hola", version="0.1.0", platform="ruby", dependencies=()):
    deps = "".join(DEPENDENCY.format(name=d, operator=o, version=v, kind=k) for d, o, v, k in dependencies)
    return SPEC.format(name=name, version=version, platform=platform, dependencies=f"\n{deps}" if deps else " []")


def gem(name="hola", version="0.1.0", platform="ruby", dependencies=(), spec=None, body=b"module Hola; end\n"):
    members = {
        "metadata.gz": gzip.compress(
            (spec if spec is not None else spec_yaml(name, version, platform, dependencies)).encode(), mtime=0
        ),
        "data.tar.gz": _data(body),
        "checksums.yaml.gz": gzip.compress(b"---\n", mtime=0),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _data(body):
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        info = tarfile.TarInfo("lib/hola.rb")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return raw.getvalue()
