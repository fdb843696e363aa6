#!/usr/bin/python3
"""check_config_dump.py checks a /config_dump body against the shape istioctl and Kiali parse
(ecosystem.md section 1.3, ztunnel-behaviour.md section 7): ztunnel's top-level keys and their
types, every object's keys sorted, 2-space pretty printing, lists sorted the way ztunnel sorts
them, certificate entries (base64 PEM, decimal serial, RFC 3339 seconds), workloadState entries,
and our own `configStatus`. Usage: check_config_dump.py FILE|- [--require-ours]. Exit 0 when the
dump conforms; otherwise every problem is printed with its JSON path and the exit code is 1."""

import base64
import json
import re
import sys

RFC3339_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
TOP_LEVEL = {
    "certificates": list,
    "config": dict,
    "policies": list,
    "services": list,
    "stagedServices": dict,
    "staticConfig": dict,
    "version": dict,
    "workloads": list,
}
OPTIONAL_TOP_LEVEL = {"workloadState": dict, "configStatus": dict, "unsupported": (list, dict)}

problems = []


def problem(path, message):
    problems.append(f"{path}: {message}")


def check_sorted_keys(value, path):
    if isinstance(value, dict):
        keys = list(value.keys())
        if keys != sorted(keys):
            problem(path or "$", f"keys not sorted: {keys}")
        for key, child in value.items():
            check_sorted_keys(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            check_sorted_keys(child, f"{path}[{i}]")


def want_type(value, kind, path):
    if not isinstance(value, kind):
        problem(path, f"want {kind}, got {type(value).__name__}")
        return False
    return True


def check_sorted_list(items, key, path):
    keys = [key(item) for item in items if isinstance(item, dict)]
    if keys != sorted(keys):
        problem(path, f"not sorted: {keys}")


def check_cert(cert, path):
    if not want_type(cert, dict, path):
        return
    for field in ("pem", "serialNumber", "validFrom", "expirationTime"):
        if not isinstance(cert.get(field), str):
            problem(f"{path}.{field}", "missing or not a string")
            return
    try:
        pem = base64.b64decode(cert["pem"], validate=True).decode()
        if "-----BEGIN CERTIFICATE-----" not in pem:
            problem(f"{path}.pem", "base64 of something that is not a PEM certificate")
    except Exception:  # noqa: BLE001 - any decoding failure is the finding
        problem(f"{path}.pem", "not base64 of PEM text")
    if not cert["serialNumber"].isdigit():
        problem(f"{path}.serialNumber", "not a decimal string")
    for field in ("validFrom", "expirationTime"):
        if not RFC3339_SECONDS.match(cert[field]):
            problem(f"{path}.{field}", f"not RFC 3339 seconds with Z: {cert[field]!r}")


def check(dump, raw, require_ours):
    if not want_type(dump, dict, "$"):
        return
    for key, kind in TOP_LEVEL.items():
        if key not in dump:
            problem(key, "missing")
        else:
            want_type(dump[key], kind, key)
    for key, kind in OPTIONAL_TOP_LEVEL.items():
        if key in dump:
            want_type(dump[key], kind, key)
    if require_ours and "configStatus" not in dump:
        problem("configStatus", "missing")
    check_sorted_keys(dump, "")

    # ztunnel pretty-prints with 2-space indent and sorted keys: re-serializing must give the
    # same text.
    again = json.dumps(dump, indent=2, sort_keys=True, ensure_ascii=False)
    if raw.rstrip("\n") != again:
        problem("$", "not 2-space pretty JSON with sorted keys (re-serialization differs)")

    static = dump.get("staticConfig")
    if isinstance(static, dict):
        for key in ("policies", "services", "workloads"):
            if not isinstance(static.get(key), list):
                problem(f"staticConfig.{key}", "missing or not a list")

    certs = dump.get("certificates")
    if isinstance(certs, list):
        check_sorted_list(certs, lambda c: c.get("identity", ""), "certificates")
        for i, entry in enumerate(certs):
            path = f"certificates[{i}]"
            if not want_type(entry, dict, path):
                continue
            if not isinstance(entry.get("identity"), str):
                problem(f"{path}.identity", "missing or not a string")
            state = entry.get("state")
            if not (state in ("Available", "Initializing")
                    or (isinstance(state, str) and state.startswith("Unavailable: "))):
                problem(f"{path}.state", f"unexpected {state!r}")
            for chain in ("certChain", "rootCerts"):
                if not isinstance(entry.get(chain), list):
                    problem(f"{path}.{chain}", "missing or not a list")
                    continue
                for j, cert in enumerate(entry[chain]):
                    check_cert(cert, f"{path}.{chain}[{j}]")

    workloads = dump.get("workloads")
    if isinstance(workloads, list):
        check_sorted_list(workloads, lambda w: w.get("uid", ""), "workloads")
        for i, w in enumerate(workloads):
            path = f"workloads[{i}]"
            if not want_type(w, dict, path):
                continue
            if not isinstance(w.get("workloadIps"), list):
                problem(f"{path}.workloadIps", "missing or not a list")
            if w.get("protocol") not in ("TCP", "HBONE"):
                problem(f"{path}.protocol", f"unexpected {w.get('protocol')!r}")
            for field in ("name", "namespace"):
                if not isinstance(w.get(field), str):
                    problem(f"{path}.{field}", "missing or not a string")

    services = dump.get("services")
    if isinstance(services, list):
        check_sorted_list(services, lambda s: s.get("hostname", ""), "services")
        for i, s in enumerate(services):
            for vip in s.get("vips", []) if isinstance(s, dict) else []:
                if not isinstance(vip, str) or "/" not in vip:
                    problem(f"services[{i}].vips", f"want \"network/ip\", got {vip!r}")

    policies = dump.get("policies")
    if isinstance(policies, list):
        check_sorted_list(policies,
                          lambda p: f"{p.get('namespace', '')}/{p.get('name', '')}", "policies")

    state = dump.get("workloadState")
    if isinstance(state, dict):
        for uid, pod in state.items():
            path = f"workloadState.{uid}"
            if not want_type(pod, dict, path):
                continue
            if pod.get("state") not in ("Pending", "Up"):
                problem(f"{path}.state", f"unexpected {pod.get('state')!r}")
            info = pod.get("info")
            if not isinstance(info, dict) or not all(
                    isinstance(info.get(k), str) for k in ("name", "namespace", "serviceAccount")):
                problem(f"{path}.info", "want {name, namespace, serviceAccount} strings")
            conns = pod.get("connections")
            if conns is None:
                continue
            for direction in ("inbound", "outbound"):
                for j, conn in enumerate(conns.get(direction, []) if isinstance(conns, dict) else []):
                    cpath = f"{path}.connections.{direction}[{j}]"
                    if not isinstance(conn, dict):
                        problem(cpath, "not an object")
                        continue
                    for field in ("src", "actualDst"):
                        if not isinstance(conn.get(field), str):
                            problem(f"{cpath}.{field}", "missing or not a string")
                    if conn.get("protocol") not in ("TCP", "HBONE", "DOUBLEHBONE"):
                        problem(f"{cpath}.protocol", f"unexpected {conn.get('protocol')!r}")

    status = dump.get("configStatus")
    if isinstance(status, dict):
        for key in ("lastLoaded", "lastError"):
            if key not in status:
                problem(f"configStatus.{key}", "missing")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    require_ours = "--require-ours" in sys.argv[1:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    raw = sys.stdin.read() if args[0] == "-" else open(args[0], encoding="utf-8").read()
    try:
        dump = json.loads(raw)
    except json.JSONDecodeError as err:
        print(f"not JSON: {err}")
        return 1
    check(dump, raw, require_ours)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
