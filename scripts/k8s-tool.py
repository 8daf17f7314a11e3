#!/usr/bin/env python3
"""Helpers for deploy/k8s, shared by scripts/k8s-run.sh, k8s-validate.sh and k8s-local.sh.

  render     print the manifests for one run (image, shards, load settings, START_AT, ...)
  pod        print one pod's command line and environment as JSON (for the local run)
  extract    pull one shard's results file out of its pod's log (see deploy/README.md)
  validate   check manifests against the Kubernetes schemas (kubernetes-validate, strict)
             and against what the schemas cannot say (Indexed Job, shard index, START_AT,
             token from a Secret, probes, non-root, ...)
  selftest   break copies of the manifests in known ways and check `validate` refuses each

Needs PyYAML; `validate` and `selftest` also need kubernetes-validate (the version pinned
in deploy/k8s/requirements.txt). Exit codes: 0 ok, 1 check failed, 2 usage error.
"""

import argparse
import base64
import copy
import gzip
import hashlib
import json
import os
import re
import shlex
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST_DIR = os.path.join(HERE, "..", "deploy", "k8s")
# The files that make up a deployment, in the order they are applied.
MANIFESTS = ["namespace.yaml", "server.yaml", "load-job.yaml"]
SECRET_EXAMPLE = "secret.example.yaml"
TOKEN_ENV = "FEEDBENCH_CONTROL_TOKEN"
LOAD_KEYS = {
    "RUN_ID", "TARGET", "TRANSPORT", "CLIENTS", "SHARDS", "RATE", "PAYLOAD_BYTES",
    "DURATION", "WARMUP", "RAMP", "POLL_INTERVAL", "START_AT",
}
BEGIN = "FEEDBENCH-SHARD-BEGIN"
END = "FEEDBENCH-SHARD-END"


def _str_presenter(dumper, data):
    # Multi-line strings (the load command) stay readable block scalars when rendered.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


yaml.add_representer(str, _str_presenter, Dumper=yaml.SafeDumper)


def die(msg, code=2):
    print(f"k8s-tool: {msg}", file=sys.stderr)
    sys.exit(code)


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def load_set(directory):
    docs = []
    for name in MANIFESTS:
        docs += load_docs(os.path.join(directory, name))
    return docs


def find(docs, kind, name=None):
    hits = [d for d in docs if d.get("kind") == kind
            and (name is None or d.get("metadata", {}).get("name") == name)]
    return hits


def one(docs, kind, name=None):
    hits = find(docs, kind, name)
    if len(hits) != 1:
        die(f"expected one {kind}{' ' + name if name else ''} in the manifests, found {len(hits)}")
    return hits[0]


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


# ---------------------------------------------------------------- render

def render(args):
    docs = load_set(args.dir)
    if args.namespace:
        for d in docs:
            if d["kind"] == "Namespace":
                d["metadata"]["name"] = args.namespace
            else:
                d["metadata"]["namespace"] = args.namespace
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            for c in pod_spec(d)["containers"]:
                if args.image:
                    c["image"] = args.image
                if args.pull_policy:
                    c["imagePullPolicy"] = args.pull_policy
    server = one(docs, "Deployment", "feedbench-server")
    if args.max_connections is not None:
        for c in pod_spec(server)["containers"]:
            for e in c.get("env", []):
                if e["name"] == "FEEDBENCH_MAX_CONNECTIONS":
                    e["value"] = str(args.max_connections)
    cm = one(docs, "ConfigMap", "feedbench-load")
    job = one(docs, "Job", "feedbench-load")
    for kv in args.set or []:
        key, sep, value = kv.partition("=")
        if not sep or key not in LOAD_KEYS:
            die(f"--set {kv!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(LOAD_KEYS))}")
        cm["data"][key] = value
    if args.shards is not None:
        if args.shards < 1:
            die("--shards must be at least 1")
        cm["data"]["SHARDS"] = str(args.shards)
    shards = int(cm["data"]["SHARDS"])
    job["spec"]["completions"] = shards
    job["spec"]["parallelism"] = shards
    if args.active_deadline is not None:
        job["spec"]["activeDeadlineSeconds"] = args.active_deadline
    keep = {"all": None, "namespace": ("Namespace",), "server": ("Deployment", "Service"),
            "load": ("ConfigMap", "Job")}[args.only]
    out = [d for d in docs if keep is None or d["kind"] in keep]
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------- pod

def pod(args):
    """The command line and environment one container of the manifests would get, with
    the ConfigMap's data (envFrom) and the literal env values; Secret-backed variables
    are listed by name in `secret_env`, for the caller to supply."""
    docs = load_docs(args.file) if args.file else load_set(args.dir)
    kind = {"server": "Deployment", "load": "Job"}[args.which]
    workload = one(docs, kind)
    container = pod_spec(workload)["containers"][0]
    env, secret_env = {}, []
    for src in container.get("envFrom", []):
        ref = src.get("configMapRef", {}).get("name")
        if ref:
            env.update(one(docs, "ConfigMap", ref)["data"])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "secretKeyRef" in e.get("valueFrom", {}):
            secret_env.append(e["name"])
    argv = list(container.get("command", [])) + list(container.get("args", []))
    # The kubelet expands $(VAR) in command and args from the container's environment
    # (not the Secret's values: none of the commands take one).
    argv = [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                   lambda m: env.get(m.group(1), m.group(0)), a) for a in argv]
    json.dump({"argv": argv, "env": env, "secret_env": secret_env}, sys.stdout)
    print()


# ---------------------------------------------------------------- extract

def extract(args):
    """Finds the block a load pod printed (BEGIN marker, base64 of the gzip'd results,
    END marker) in its log and writes the results file, checking run id, shard index,
    length and SHA-256. Prints the shard's load exit code."""
    with open(args.log, errors="replace") as f:
        lines = f.read().splitlines()
    begin = None
    for i, line in enumerate(lines):
        if line.startswith(BEGIN + " "):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            if fields.get("run") == args.run and fields.get("index") == str(args.index):
                begin = (i, fields)
    if begin is None:
        die(f"{args.log}: no results block for run {args.run} shard {args.index}", 1)
    i, fields = begin
    body = []
    for line in lines[i + 1:]:
        if line.startswith(END + " "):
            break
        body.append(line.strip())
    else:
        die(f"{args.log}: shard {args.index}'s results block has no end marker (log cut short?)", 1)
    try:
        data = gzip.decompress(base64.b64decode("".join(body), validate=True))
    except Exception as e:  # noqa: BLE001 - any decoding failure means a damaged block
        die(f"{args.log}: shard {args.index}'s results block does not decode: {e}", 1)
    if str(len(data)) != fields.get("bytes") or hashlib.sha256(data).hexdigest() != fields.get("sha256"):
        die(f"{args.log}: shard {args.index}'s results do not match their length or SHA-256", 1)
    with open(args.out, "wb") as f:
        f.write(data)
    print(fields.get("exit", "?"))


# ---------------------------------------------------------------- validate

def semantic_errors(docs):
    """What the schemas cannot check. Returns a list of messages."""
    errs = []
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in find(docs, "ConfigMap")}
    for d in find(docs, "ConfigMap"):
        for k, v in (d.get("data") or {}).items():
            if k == TOKEN_ENV or "token" in k.lower():
                errs.append(f"ConfigMap {d['metadata']['name']}: key {k} looks like the control token; it belongs in a Secret")
    workloads = find(docs, "Deployment") + find(docs, "Job")
    for w in workloads:
        name = f"{w['kind']} {w['metadata']['name']}"
        spec = pod_spec(w)
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            errs.append(f"{name}: pod securityContext.runAsNonRoot must be true")
        if not psc.get("runAsUser"):
            errs.append(f"{name}: pod securityContext.runAsUser must be a non-zero uid")
        for c in spec.get("containers", []):
            cname = f"{name} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                errs.append(f"{cname}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                errs.append(f"{cname}: allowPrivilegeEscalation must be false")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        errs.append(f"{cname}: resources.{part}.{r} is not set")
            argv = [str(a) for a in c.get("command", []) + c.get("args", [])]
            if any("--control-token" in a for a in argv):
                errs.append(f"{cname}: the control token is on the command line; give it through {TOKEN_ENV} from a Secret")
            tok = [e for e in c.get("env", []) if e["name"] == TOKEN_ENV]
            if len(tok) != 1:
                errs.append(f"{cname}: needs exactly one {TOKEN_ENV} env entry, from a secretKeyRef")
            for e in tok:
                if "value" in e or "secretKeyRef" not in e.get("valueFrom", {}):
                    errs.append(f"{cname}: {TOKEN_ENV} must come from a secretKeyRef, not a literal or other source")
            if w["kind"] == "Deployment":
                for probe in ("readinessProbe", "livenessProbe"):
                    path = c.get(probe, {}).get("httpGet", {}).get("path")
                    if path != "/healthz":
                        errs.append(f"{cname}: {probe} must be an httpGet on /healthz (got {path})")
            if w["kind"] == "Job":
                text = "\n".join(argv)
                # Not just mentioned: the shard index and the start time must be what the
                # command passes to `feedbench load --shard` and `--start-at`.
                for flag, var in (("--shard", "JOB_COMPLETION_INDEX"), ("--start-at", "START_AT")):
                    pat = flag + r"""[ =]+["']?\$(\{)?""" + var + r"\b"
                    if "feedbench load" not in text or not re.search(pat, text):
                        errs.append(f"{cname}: command does not run feedbench load {flag} ${var}")
                env_names = {e["name"] for e in c.get("env", [])}
                for src in c.get("envFrom", []):
                    ref = src.get("configMapRef", {}).get("name")
                    if ref in configmaps:
                        env_names |= set(configmaps[ref])
                    elif ref:
                        errs.append(f"{cname}: envFrom ConfigMap {ref} is not among the manifests")
                for var in ("START_AT", "SHARDS"):
                    if var not in env_names:
                        errs.append(f"{cname}: {var} is not given to the container (env or ConfigMap)")
                if "JOB_COMPLETION_INDEX" in env_names:
                    errs.append(f"{cname}: JOB_COMPLETION_INDEX is set by hand; the Job controller sets it")
        if w["kind"] == "Job":
            js = w["spec"]
            if js.get("completionMode") != "Indexed":
                errs.append(f"{name}: completionMode must be Indexed (got {js.get('completionMode')})")
            if js.get("completions") is None or js.get("completions") != js.get("parallelism"):
                errs.append(f"{name}: completions ({js.get('completions')}) must equal parallelism ({js.get('parallelism')}): every shard runs at once")
            if spec.get("restartPolicy") != "Never":
                errs.append(f"{name}: restartPolicy must be Never (a restarted shard would start late)")
            if js.get("backoffLimitPerIndex") != 0:
                errs.append(f"{name}: backoffLimitPerIndex must be 0 (a retried shard would start after START_AT)")
            if not js.get("activeDeadlineSeconds"):
                errs.append(f"{name}: activeDeadlineSeconds must bound the Job")
            for cm_ref in [s.get("configMapRef", {}).get("name") for c in spec["containers"] for s in c.get("envFrom", [])]:
                data = configmaps.get(cm_ref) or {}
                if "SHARDS" in data and str(data["SHARDS"]) != str(js.get("completions")):
                    errs.append(f"{name}: ConfigMap {cm_ref} SHARDS={data['SHARDS']} but completions={js.get('completions')}")
            spread = [t for t in spec.get("topologySpreadConstraints", [])
                      if t.get("topologyKey") == "kubernetes.io/hostname"]
            anti = [t for t in (spec.get("affinity", {}).get("podAntiAffinity", {})
                                .get("requiredDuringSchedulingIgnoredDuringExecution", []))
                    if t.get("topologyKey") == "kubernetes.io/hostname"]
            if not spread and not anti:
                errs.append(f"{name}: shards need a topology spread or anti-affinity over kubernetes.io/hostname")
    for s in find(docs, "Secret"):
        for k, v in {**(s.get("stringData") or {}), **(s.get("data") or {})}.items():
            if "REPLACE" not in str(v):
                errs.append(f"Secret {s['metadata']['name']}: key {k} holds a value; commit only the REPLACE-... placeholder")
    return errs


def schema_errors(docs, label, version):
    import kubernetes_validate.utils as kv  # noqa: PLC0415 - only validate needs it
    errs = []
    for d in docs:
        what = f"{label}: {d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if d.get("kind") == "Kustomization":
            continue
        try:
            kv.validate(d, version, strict=True)
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errs.append(f"{what} against {e.version}: {path}: {e.message}")
        except kv.SchemaNotFoundError:
            errs.append(f"{what}: no schema for {d.get('apiVersion')} {d.get('kind')} in Kubernetes {version}")
    return errs


def check(docs, label, versions, quiet=False):
    errs = []
    for v in versions:
        errs += schema_errors(docs, label, v)
    errs += [f"{label}: {e}" for e in semantic_errors(docs)]
    if not quiet:
        for e in errs:
            print(f"ERROR {e}")
    return errs


def validate(args):
    failed = 0
    for path in args.files:
        docs = load_docs(path)
        shown = os.path.relpath(path)
        shown = path if shown.startswith("..") else shown
        errs = check(docs, shown, args.k8s_version)
        print(f"{'FAIL' if errs else 'ok  '} {shown} "
              f"({len(docs)} resources, Kubernetes {', '.join(args.k8s_version)}, strict)")
        failed += bool(errs)
    sys.exit(1 if failed else 0)


# ---------------------------------------------------------------- selftest

# Each case: a manifest file, a text edit on it, and a word the refusal must contain.
BROKEN = [
    ("load-job.yaml", "  completionMode: Indexed", "  completionsMode: Indexed",
     "completionsMode", "a misspelt field (strict schema)"),
    ("load-job.yaml", "  parallelism: 4", "  parallelism: four",
     "parallelism", "a string where an integer belongs (schema)"),
    ("server.yaml", "          readinessProbe:", "          readinessProbes:",
     "readinessProbes", "a misspelt probe field (strict schema)"),
    ("load-job.yaml", "  completionMode: Indexed", "  completionMode: NonIndexed",
     "Indexed", "a Job that is not Indexed"),
    ("load-job.yaml", "  parallelism: 4", "  parallelism: 3",
     "parallelism", "completions != parallelism"),
    ("load-job.yaml", '--start-at "$START_AT"', "", "START_AT", "a shard command without START_AT"),
    ("load-job.yaml", '--shard "$JOB_COMPLETION_INDEX/$SHARDS"', '--shard "0/$SHARDS"',
     "JOB_COMPLETION_INDEX", "a shard command without JOB_COMPLETION_INDEX"),
    ("server.yaml",
     "              valueFrom:\n                secretKeyRef:\n                  name: feedbench-control\n                  key: token\n",
     '              value: "hunter2"\n', "secretKeyRef", "a literal token in the server"),
    ("server.yaml", "            readOnlyRootFilesystem: true", "            readOnlyRootFilesystem: false",
     "readOnlyRootFilesystem", "a writable root filesystem"),
    ("load-job.yaml", "  backoffLimitPerIndex: 0", "  backoffLimitPerIndex: 2",
     "backoffLimitPerIndex", "retried shards"),
]


def selftest(args):
    passed = failed = 0
    # The untouched copy must pass, or every refusal below proves nothing.
    base = check(load_set(args.dir), "untouched", args.k8s_version, quiet=True)
    if base:
        print("FAIL the untouched manifests do not validate:\n  " + "\n  ".join(base))
        sys.exit(1)
    for fname, old, new, word, what in BROKEN:
        with tempfile.TemporaryDirectory() as tmp:
            for name in MANIFESTS:
                with open(os.path.join(args.dir, name)) as src, open(os.path.join(tmp, name), "w") as dst:
                    text = src.read()
                    if name == fname:
                        if old not in text:
                            print(f"FAIL {what}: the text to break is no longer in {fname}: {old!r}")
                            failed += 1
                            break
                        text = text.replace(old, new, 1)
                    dst.write(text)
            else:
                try:
                    errs = check(load_set(tmp), f"broken {fname}", args.k8s_version, quiet=True)
                except Exception as e:  # noqa: BLE001 - a crash is a failed self-test
                    errs, word = [f"crashed: {e!r}"], "\0"
                if any(word in e for e in errs):
                    passed += 1
                    print(f"ok   refused {what}: {errs[0]}")
                else:
                    failed += 1
                    print(f"FAIL not refused as expected: {what}; errors: {errs}")
    print(f"selftest: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=MANIFEST_DIR, help="manifest directory (default: deploy/k8s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="print the manifests for one run")
    r.add_argument("--only", choices=["all", "namespace", "server", "load"], default="all",
                   help="server: Deployment and Service; load: ConfigMap and Job")
    r.add_argument("--image")
    r.add_argument("--pull-policy", choices=["Always", "IfNotPresent", "Never"])
    r.add_argument("--namespace")
    r.add_argument("--shards", type=int)
    r.add_argument("--max-connections", type=int)
    r.add_argument("--active-deadline", type=int)
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="a load ConfigMap value")
    r.set_defaults(func=render)
    q = sub.add_parser("pod", help="one container's argv and env as JSON")
    q.add_argument("which", choices=["server", "load"])
    q.add_argument("--file", help="a rendered manifest set (default: the manifest directory)")
    q.set_defaults(func=pod)
    x = sub.add_parser("extract", help="a shard's results file from its pod log")
    x.add_argument("log")
    x.add_argument("out")
    x.add_argument("--run", required=True)
    x.add_argument("--index", type=int, required=True)
    x.set_defaults(func=extract)
    for name, func in (("validate", validate), ("selftest", selftest)):
        v = sub.add_parser(name)
        v.add_argument("-k", "--k8s-version", action="append",
                       help="Kubernetes version to validate against (repeat; default 1.37.0)")
        if name == "validate":
            v.add_argument("files", nargs="+")
        v.set_defaults(func=func)
    args = p.parse_args()
    if getattr(args, "k8s_version", "unset") is None:
        args.k8s_version = ["1.37.0"]
    args.func(args)


if __name__ == "__main__":
    main()
