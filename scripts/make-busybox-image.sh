#!/usr/bin/env bash
# make-busybox-image.sh OUT NAME [--format oci-dir|oci-tar|docker-tar]
#
# Builds a minimal single-layer image from the host's static busybox
# (busybox-static): /bin/busybox with symlinks for common applets, /etc/passwd
# and /etc/group with root, nobody (65534) and app (1000), Cmd ["sh"], a PATH,
# WorkingDir /. The output is reproducible: the same busybox gives the same
# digests, so importing it twice names one image.
#
#   oci-dir     OUT is a directory holding an OCI image layout (default)
#   oci-tar     OUT is a tar of that layout
#   docker-tar  OUT is a `docker save` style archive (manifest.json, config,
#               <id>/layer.tar uncompressed)
#
# NAME is an image reference ("busybox", "sbx/busybox:test"). The OCI index
# annotates the manifest with io.containerd.image.name (the normalised name)
# and org.opencontainers.image.ref.name (its tag), as containerd does.
# Environment: BUSYBOX overrides the busybox binary (default /bin/busybox);
# EXTRA_ROOT names a directory whose tree (files, directories, symlinks) is
# added to the layer over the busybox files, e.g. a runtime and an app.
set -euo pipefail

usage() {
  echo "usage: $0 OUT NAME [--format oci-dir|oci-tar|docker-tar]" >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
out=$1
name=$2
shift 2
format=oci-dir
while [[ $# -gt 0 ]]; do
  case $1 in
    --format) [[ $# -ge 2 ]] || usage; format=$2; shift 2 ;;
    --format=*) format=${1#--format=}; shift ;;
    *) usage ;;
  esac
done
case $format in oci-dir|oci-tar|docker-tar) ;; *) usage ;; esac

busybox=${BUSYBOX:-/bin/busybox}
if [[ ! -x $busybox ]]; then
  echo "$0: $busybox not found; install busybox-static" >&2
  exit 1
fi

# The system interpreter starts fastest (no version-manager shims); any python3 works.
python=/usr/bin/python3
[[ -x $python ]] || python=python3

exec "$python" - "$out" "$name" "$format" "$busybox" "${EXTRA_ROOT:-}" <<'PY'
import gzip
import hashlib
import io
import json
import os
import platform
import sys
import tarfile
import tempfile

out, name, fmt, busybox, extra_root = sys.argv[1:6]

APPLETS = ["sh", "echo", "cat", "ls", "sleep", "id", "env", "pwd", "true", "false", "dmesg",
           "uname", "ps", "wget", "nc", "head", "tail", "grep", "mkdir", "rm", "touch",
           "hostname", "date", "dd", "seq", "printf", "test", "kill", "mount", "stat", "chown",
           "chmod", "wc", "nproc", "awk", "cut", "tr", "sed", "cp", "ln", "timeout", "df", "du"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
        "riscv64": "riscv64", "s390x": "s390x", "ppc64le": "ppc64le"}.get(
            platform.machine(), platform.machine())


def normalise(ref):
    """Docker's normalisation, enough for names this script is given."""
    rest, digest = (ref.split("@", 1) + [""])[:2]
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
    else:
        domain, path = "docker.io", rest
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if not tag and not digest:
        tag = "latest"
    full = domain + "/" + path + (":" + tag if tag else "") + ("@" + digest if digest else "")
    familiar = full
    if domain == "docker.io":
        familiar = full[len("docker.io/"):]
        if familiar.startswith("library/") and "/" not in path[len("library/"):]:
            familiar = familiar[len("library/"):]
    return full, familiar, tag


def add(tar, path, kind, mode, data=b"", target="", uid=0, gid=0):
    info = tarfile.TarInfo(path)
    info.mtime = 0
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in [("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755),
                        ("proc", 0o555), ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777),
                        ("usr", 0o755), ("usr/bin", 0o755), ("var", 0o755)]:
            add(tar, d, "dir", mode)
        add(tar, "home/app", "dir", 0o755, uid=1000, gid=1000)
        with open(busybox, "rb") as f:
            add(tar, "bin/busybox", "file", 0o755, f.read())
        for applet in APPLETS:
            add(tar, "bin/" + applet, "symlink", 0o777, target="busybox")
        add(tar, "etc/passwd", "file", 0o644, PASSWD.encode())
        add(tar, "etc/group", "file", 0o644, GROUP.encode())
        if extra_root:
            seen = {"bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "usr/bin", "var"}
            for top, dirs, files in os.walk(extra_root):
                dirs.sort()
                rel_top = os.path.relpath(top, extra_root)
                for n in dirs + sorted(files):
                    full = os.path.join(top, n)
                    rel = os.path.normpath(os.path.join(rel_top, n))
                    st = os.lstat(full)
                    if os.path.islink(full):
                        add(tar, rel, "symlink", 0o777, target=os.readlink(full))
                    elif os.path.isdir(full):
                        if rel not in seen:
                            add(tar, rel, "dir", st.st_mode & 0o7777)
                    else:
                        with open(full, "rb") as f:
                            add(tar, rel, "file", st.st_mode & 0o7777, f.read())
    return buf.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def tar_tree(src, dst):
    """A reproducible tar of a directory (sorted, zero times, root owned)."""
    tmp = dst + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for n in sorted(dirs) + sorted(files):
                full = os.path.join(root, n)
                rel = os.path.relpath(full, src)
                if os.path.isdir(full):
                    add(tar, rel, "dir", 0o755)
                else:
                    with open(full, "rb") as f:
                        add(tar, rel, "file", 0o644, f.read())
    os.replace(tmp, dst)


full_name, familiar_name, tag = normalise(name)
layer = layer_tar()
diff_id = "sha256:" + sha(layer)
config = dumps({
    "architecture": ARCH,
    "os": "linux",
    "created": "1970-01-01T00:00:00Z",
    "config": {"Env": ["PATH=" + PATH], "Cmd": ["sh"], "WorkingDir": "/"},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "make-busybox-image.sh"}],
})


def oci_layout(directory):
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=6, mtime=0) as z:
        z.write(layer)
    blob = gz.getvalue()
    manifest = dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + sha(blob), "size": len(blob)}],
    })
    for data in (blob, config, manifest):
        write(os.path.join(directory, "blobs", "sha256", sha(data)), data)
    annotations = {"io.containerd.image.name": full_name}
    if tag:
        annotations["org.opencontainers.image.ref.name"] = tag
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + sha(manifest), "size": len(manifest),
                       "annotations": annotations}],
    }
    write(os.path.join(directory, "index.json"), dumps(index))
    write(os.path.join(directory, "oci-layout"), dumps({"imageLayoutVersion": "1.0.0"}))


def docker_archive(directory):
    config_hex = sha(config)
    layer_dir = sha(diff_id.encode())
    write(os.path.join(directory, config_hex + ".json"), config)
    write(os.path.join(directory, layer_dir, "layer.tar"), layer)
    manifest = [{"Config": config_hex + ".json", "RepoTags": [familiar_name],
                 "Layers": [layer_dir + "/layer.tar"]}]
    write(os.path.join(directory, "manifest.json"), json.dumps(manifest).encode())


if fmt == "oci-dir":
    if os.path.isdir(out) and os.listdir(out):
        sys.exit(f"{out} exists and is not empty")
    oci_layout(out)
else:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
        (oci_layout if fmt == "oci-tar" else docker_archive)(tmp)
        tar_tree(tmp, out)
print(f"{out}: {familiar_name} ({fmt}) config sha256:{sha(config)}")
PY
