#!/usr/bin/python3
# check_config_dump.py reads a `/config_dump` document on stdin (or from the file given) and
# checks its shape the way its consumers read it, independently of our C++ (docs/ecosystem.md
# §1.3–1.4): the exact top-level key set; every object's keys sorted and a 2-space indent
# (serde_json's `to_string_pretty` of a `Value`); lists sorted as ztunnel sorts them; the types
# istioctl's Go structs (istioctl/pkg/writer/ztunnel/configdump/api.go) would decode, and the
# encodings it parses (`network/ip` VIPs cut on '/', decimal serials, RFC 3339 times, base64 PEM).
# Exit 0 when the document passes, 1 with one line per problem otherwise. Usable on a live
# instance: `curl -s 127.0.0.1:15000/config_dump | /usr/bin/python3 check_config_dump.py`.

import base64
import datetime
import ipaddress
import json
import sys

TOP_LEVEL = {
    "certificates", "config", "configStatus", "policies", "services", "stagedServices",
    "staticConfig", "unsupported", "version", "workloadState", "workloads",
}
WORKLOAD_ALWAYS = {"workloadIps", "protocol", "networkMode", "name", "namespace", "status",
                   "clusterId", "capacity"}
WORKLOAD_STRINGS = {"uid", "name", "namespace", "trustDomain", "serviceAccount", "network",
                    "workloadName", "workloadType", "canonicalName", "canonicalRevision",
                    "hostname", "node", "clusterId"}
WORKLOAD_KEYS = WORKLOAD_ALWAYS | WORKLOAD_STRINGS | {
    "waypoint", "networkGateway", "nativeTunnel", "applicationTunnel", "authorizationPolicies",
    "locality", "services"}
SERVICE_ALWAYS = {"name", "namespace", "hostname", "vips", "ports", "endpoints",
                  "subjectAltNames", "canonical"}
SERVICE_KEYS = SERVICE_ALWAYS | {"cidrVips", "waypoint", "weightedWaypoints", "loadBalancer",
                                 "ipFamilies", "visibility"}
MATCH_KEYS = {"namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts",
              "principals", "notPrincipals", "sourceIps", "notSourceIps", "destinationIps",
              "notDestinationIps", "destinationPorts", "notDestinationPorts"}
VERSION_KEYS = {"buildProfile", "buildStatus", "cryptoProvider", "gitRevision", "istioVersion",
                "rustVersion", "version"}
STATUS_KEYS = {"path", "lastLoaded", "appliedSha256", "reloadsSuccess", "reloadsFailure",
               "lastFailure", "lastError", "lastErrors", "warnings"}

problems = []


def bad(where, what):
    problems.append(f"{where}: {what}")


def is_str(v):
    return isinstance(v, str)


def is_uint(v, limit=None):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0 and (limit is None or v <= limit)


def want(where, cond, what):
    if not cond:
        bad(where, what)
    return cond


def str_list(where, v):
    if want(where, isinstance(v, list), "expected a list"):
        for i, item in enumerate(v):
            want(f"{where}[{i}]", is_str(item), "expected a string")


def rfc3339(where, v):
    if not want(where, is_str(v) and v.endswith("Z"), f"expected RFC 3339 UTC, got {v!r}"):
        return None
    try:
        return datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        bad(where, f"not RFC 3339 at seconds precision: {v!r}")
        return None


def port_map(where, v):
    # istioctl decodes endpoint ports as map[uint16]uint16: keys must be decimal uint16.
    if not want(where, isinstance(v, dict), "expected a port map object"):
        return
    for k, target in v.items():
        want(where, k.isdigit() and int(k) <= 65535, f"port key {k!r} is not a uint16")
        want(f"{where}.{k}", is_uint(target, 65535), "target port is not a uint16")


def network_address(where, v):
    if not want(where, is_str(v) and "/" in v, f"expected 'network/ip', got {v!r}"):
        return
    ip = v.rsplit("/", 1)[1]
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        bad(where, f"not an IP after '/': {v!r}")


def cidr(where, v):
    try:
        ipaddress.ip_network(v, strict=True)
    except (ValueError, TypeError):
        bad(where, f"not a CIDR: {v!r}")


def gateway(where, v):
    if want(where, isinstance(v, dict), "expected an object"):
        want(where, set(v) == {"destination", "hboneMtlsPort"}, f"keys {sorted(v)}")
        want(where, is_str(v.get("destination")) and "/" in v.get("destination", ""),
             "destination is not 'network/ip' or 'ns/hostname'")
        want(where, is_uint(v.get("hboneMtlsPort"), 65535), "hboneMtlsPort is not a port")


def check_sorted(where, items, key):
    keys = [key(x) for x in items if isinstance(x, dict)]
    want(where, keys == sorted(keys), "not sorted")


def workload(where, w, static):
    if not want(where, isinstance(w, dict), "expected an object"):
        return
    missing = WORKLOAD_ALWAYS - set(w)
    want(where, not missing, f"missing {sorted(missing)}")
    unknown = set(w) - WORKLOAD_KEYS
    want(where, not unknown, f"unknown keys {sorted(unknown)}")
    for k in WORKLOAD_STRINGS & set(w):
        want(f"{where}.{k}", is_str(w[k]), "expected a string")
    for k in WORKLOAD_STRINGS - {"name", "namespace", "clusterId"}:
        # serde's skip_serializing_if = "is_default": an empty string is never written.
        if k in w:
            want(f"{where}.{k}", w[k] != "", "empty string should be skipped")
    if "workloadIps" in w:
        str_list(f"{where}.workloadIps", w["workloadIps"])
        for i, ip in enumerate(w["workloadIps"] if isinstance(w["workloadIps"], list) else []):
            try:
                ipaddress.ip_address(ip)
            except (ValueError, TypeError):
                bad(f"{where}.workloadIps[{i}]", f"not an IP: {ip!r}")
    want(f"{where}.protocol", w.get("protocol") in ("TCP", "HBONE"), "not TCP/HBONE")
    want(f"{where}.networkMode", w.get("networkMode") in ("Standard", "HostNetwork"), "bad value")
    want(f"{where}.status", w.get("status") in ("Healthy", "Unhealthy"), "bad value")
    want(f"{where}.capacity", is_uint(w.get("capacity"), 2**32 - 1), "not a u32")
    if "nativeTunnel" in w:
        want(f"{where}.nativeTunnel", w["nativeTunnel"] is True, "false should be skipped")
    for k in ("waypoint", "networkGateway"):
        if k in w:
            gateway(f"{where}.{k}", w[k])
    if "applicationTunnel" in w:
        t = w["applicationTunnel"]
        want(f"{where}.applicationTunnel", isinstance(t, dict) and set(t) == {"protocol", "port"}
             and t.get("protocol") in ("NONE", "PROXY")
             and (t.get("port") is None or is_uint(t.get("port"), 65535)), f"bad {t!r}")
    if "authorizationPolicies" in w:
        str_list(f"{where}.authorizationPolicies", w["authorizationPolicies"])
    if "locality" in w:
        loc = w["locality"]
        want(f"{where}.locality", isinstance(loc, dict) and set(loc) == {"region", "zone", "subzone"}
             and all(is_str(x) for x in loc.values()), f"bad {loc!r}")
    if "services" in w:
        if static:
            # LocalWorkload: a map of `ns/hostname` to port maps.
            if want(f"{where}.services", isinstance(w["services"], dict), "expected an object"):
                for k, v in w["services"].items():
                    want(f"{where}.services", "/" in k, f"key {k!r} is not ns/hostname")
                    port_map(f"{where}.services.{k}", v)
        else:
            str_list(f"{where}.services", w["services"])
            want(f"{where}.services", len(w["services"]) > 0, "empty list should be skipped")


def service(where, s, static):
    if not want(where, isinstance(s, dict), "expected an object"):
        return
    missing = SERVICE_ALWAYS - set(s)
    want(where, not missing, f"missing {sorted(missing)}")
    unknown = set(s) - SERVICE_KEYS
    want(where, not unknown, f"unknown keys {sorted(unknown)}")
    for k in ("name", "namespace", "hostname"):
        want(f"{where}.{k}", is_str(s.get(k)), "expected a string")
    if want(f"{where}.vips", isinstance(s.get("vips"), list), "expected a list"):
        for i, vip in enumerate(s["vips"]):
            network_address(f"{where}.vips[{i}]", vip)
    for i, c in enumerate(s.get("cidrVips", [])):
        want(f"{where}.cidrVips[{i}]", isinstance(c, dict) and set(c) == {"network", "cidr"},
             f"bad {c!r}")
        if isinstance(c, dict):
            cidr(f"{where}.cidrVips[{i}].cidr", c.get("cidr"))
    port_map(f"{where}.ports", s.get("ports"))
    eps = s.get("endpoints")
    if want(f"{where}.endpoints", isinstance(eps, dict), "expected an object"):
        for uid, ep in eps.items():
            ew = f"{where}.endpoints[{uid!r}]"
            if want(ew, isinstance(ep, dict) and set(ep) == {"workloadUid", "port", "status"},
                    f"bad {ep!r}"):
                want(ew, ep["workloadUid"] == uid, "keyed by another uid")
                port_map(f"{ew}.port", ep["port"])
                want(ew, ep["status"] in ("Healthy", "Unhealthy"), "bad status")
    str_list(f"{where}.subjectAltNames", s.get("subjectAltNames"))
    want(f"{where}.canonical", isinstance(s.get("canonical"), bool), "expected a bool")
    if "waypoint" in s:
        gateway(f"{where}.waypoint", s["waypoint"])
    if "ipFamilies" in s:
        want(f"{where}.ipFamilies", s["ipFamilies"] in ("Dual", "IPv4", "IPv6"), "bad value")
    if "visibility" in s:
        want(f"{where}.visibility", s["visibility"] in ("Public", "Namespace"), "bad value")
    if "loadBalancer" in s:
        lb = s["loadBalancer"]
        want(f"{where}.loadBalancer", isinstance(lb, dict)
             and set(lb) == {"routingPreferences", "mode", "healthPolicy"}, f"bad {lb!r}")


def string_match(where, m):
    if not want(where, isinstance(m, dict) and len(m) == 1, f"expected a tagged match, got {m!r}"):
        return
    (tag, value), = m.items()
    if tag == "Presence":
        # serde writes the zero-field tuple variant `Presence()` as [].
        want(where, value == [], f"Presence should be [], got {value!r}")
    else:
        want(where, tag in ("Exact", "Prefix", "Suffix") and is_str(value), f"bad {m!r}")


def policy(where, p):
    if not want(where, isinstance(p, dict), "expected an object"):
        return
    want(where, set(p) == {"name", "namespace", "scope", "action", "rules", "dryRun"},
         f"keys {sorted(p)}")
    want(f"{where}.scope", p.get("scope") in ("Global", "Namespace", "WorkloadSelector"), "bad")
    want(f"{where}.action", p.get("action") in ("Allow", "Deny"), "bad")
    want(f"{where}.dryRun", isinstance(p.get("dryRun"), bool), "expected a bool")
    rules = p.get("rules")
    if not want(f"{where}.rules", isinstance(rules, list), "expected a list"):
        return
    for r, rule in enumerate(rules):
        if not want(f"{where}.rules[{r}]", isinstance(rule, list), "expected a list (clauses)"):
            continue
        for c, clause in enumerate(rule):
            if not want(f"{where}.rules[{r}][{c}]", isinstance(clause, list),
                        "expected a list (matches)"):
                continue
            for m, match in enumerate(clause):
                mw = f"{where}.rules[{r}][{c}][{m}]"
                if not want(mw, isinstance(match, dict), "expected an object"):
                    continue
                want(mw, not (set(match) - MATCH_KEYS), f"unknown keys {sorted(set(match) - MATCH_KEYS)}")
                for k, v in match.items():
                    want(f"{mw}.{k}", isinstance(v, list) and len(v) > 0,
                         "expected a non-empty list (empty ones are skipped)")
                    if not isinstance(v, list):
                        continue
                    for item in v:
                        if k in ("namespaces", "notNamespaces", "principals", "notPrincipals"):
                            string_match(f"{mw}.{k}", item)
                        elif k in ("serviceAccounts", "notServiceAccounts"):
                            want(f"{mw}.{k}", isinstance(item, dict)
                                 and set(item) == {"namespace", "serviceAccount"}, f"bad {item!r}")
                        elif k.endswith("Ips") or k.endswith("ips"):
                            cidr(f"{mw}.{k}", item)
                        else:
                            want(f"{mw}.{k}", is_uint(item, 65535), "not a port")


def cert(where, c):
    if not want(where, isinstance(c, dict)
                and set(c) == {"pem", "serialNumber", "validFrom", "expirationTime"},
                f"bad keys {sorted(c) if isinstance(c, dict) else c!r}"):
        return
    try:
        pem = base64.b64decode(c["pem"], validate=True).decode()
        want(f"{where}.pem", pem.startswith("-----BEGIN CERTIFICATE-----"), "not base64 of a PEM")
    except (ValueError, UnicodeDecodeError):
        bad(f"{where}.pem", "not base64")
    # istioctl parses the serial base-10 and prints it in hex.
    want(f"{where}.serialNumber", is_str(c["serialNumber"]) and c["serialNumber"].isdigit(),
         f"not decimal: {c['serialNumber']!r}")
    start = rfc3339(f"{where}.validFrom", c["validFrom"])
    end = rfc3339(f"{where}.expirationTime", c["expirationTime"])
    if start and end:
        want(where, start < end, "validFrom is not before expirationTime")


def connection(where, c):
    want(where, isinstance(c, dict) and set(c) == {"src", "originalDst", "actualDst", "protocol"},
         f"bad {c!r}")
    if isinstance(c, dict):
        want(where, is_str(c.get("src")) and is_str(c.get("actualDst")), "addresses not strings")
        want(where, c.get("originalDst") is None or is_str(c.get("originalDst")), "bad originalDst")
        want(where, c.get("protocol") in ("TCP", "HBONE", "DOUBLEHBONE"), "bad protocol")


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        print(f"not JSON: {e}")
        return 1
    if not isinstance(doc, dict):
        print("top level is not an object")
        return 1
    # serde_json's to_string_pretty of a BTreeMap-backed Value: sorted keys, 2-space indent.
    canonical = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
    if text.rstrip("\n") != canonical:
        for n, (a, b) in enumerate(zip(text.splitlines(), canonical.splitlines()), 1):
            if a != b:
                bad(f"line {n}", f"keys not sorted or not 2-space pretty: {a.strip()!r}")
                break
        else:
            bad("text", "differs from the sorted pretty form")
    want("(top level)", set(doc) == TOP_LEVEL,
         f"keys differ: extra {sorted(set(doc) - TOP_LEVEL)}, missing {sorted(TOP_LEVEL - set(doc))}")

    for name in ("workloads", "services", "policies", "certificates", "unsupported"):
        want(name, isinstance(doc.get(name), list), "expected a list")
    ws = doc.get("workloads") if isinstance(doc.get("workloads"), list) else []
    ss = doc.get("services") if isinstance(doc.get("services"), list) else []
    ps = doc.get("policies") if isinstance(doc.get("policies"), list) else []
    cs = doc.get("certificates") if isinstance(doc.get("certificates"), list) else []
    for i, w in enumerate(ws):
        workload(f"workloads[{i}]", w, static=False)
    check_sorted("workloads", ws, lambda w: w.get("uid", ""))
    for i, s in enumerate(ss):
        service(f"services[{i}]", s, static=False)
    check_sorted("services", ss, lambda s: (s.get("hostname", ""), s.get("namespace", "")))
    for i, p in enumerate(ps):
        policy(f"policies[{i}]", p)
    check_sorted("policies", ps, lambda p: (p.get("namespace", ""), p.get("name", "")))

    want("stagedServices", isinstance(doc.get("stagedServices"), dict), "expected an object")
    sc = doc.get("staticConfig")
    if want("staticConfig", isinstance(sc, dict) and set(sc) == {"policies", "services", "workloads"},
            "expected {policies, services, workloads}"):
        for i, w in enumerate(sc["workloads"]):
            workload(f"staticConfig.workloads[{i}]", w, static=True)
        for i, s in enumerate(sc["services"]):
            service(f"staticConfig.services[{i}]", s, static=True)
        for i, p in enumerate(sc["policies"]):
            policy(f"staticConfig.policies[{i}]", p)

    for i, c in enumerate(cs):
        where = f"certificates[{i}]"
        if not want(where, isinstance(c, dict)
                    and set(c) == {"identity", "state", "certChain", "rootCerts"}, "bad keys"):
            continue
        want(f"{where}.state", c["state"] in ("Available", "Initializing")
             or (is_str(c["state"]) and c["state"].startswith("Unavailable: ")), "bad state")
        for k in ("certChain", "rootCerts"):
            if want(f"{where}.{k}", isinstance(c[k], list), "expected a list"):
                for j, one in enumerate(c[k]):
                    cert(f"{where}.{k}[{j}]", one)
    check_sorted("certificates", cs, lambda c: c.get("identity", ""))

    want("config", isinstance(doc.get("config"), dict), "expected an object")
    v = doc.get("version")
    if want("version", isinstance(v, dict) and set(v) == VERSION_KEYS, "bad keys"):
        want("version", all(is_str(x) for x in v.values()), "values must be strings")

    state = doc.get("workloadState")
    if want("workloadState", isinstance(state, dict), "expected an object"):
        for uid, pod in state.items():
            where = f"workloadState[{uid!r}]"
            if not want(where, isinstance(pod, dict)
                        and set(pod) == {"state", "info", "connections"}, "bad keys"):
                continue
            want(f"{where}.state", pod["state"] in ("Up", "Pending"), "bad state")
            want(f"{where}.info", isinstance(pod["info"], dict)
                 and set(pod["info"]) == {"name", "namespace", "serviceAccount"}, "bad info")
            conns = pod["connections"]
            if want(f"{where}.connections", isinstance(conns, dict)
                    and set(conns) == {"inbound", "outbound"}, "bad keys"):
                for d in ("inbound", "outbound"):
                    for j, c in enumerate(conns[d]):
                        connection(f"{where}.connections.{d}[{j}]", c)

    st = doc.get("configStatus")
    if want("configStatus", isinstance(st, dict) and set(st) == STATUS_KEYS, "bad keys"):
        for k in ("lastLoaded", "lastFailure"):
            if st[k] is not None:
                rfc3339(f"configStatus.{k}", st[k])
        want("configStatus.lastError", st["lastError"] is None or is_str(st["lastError"]), "bad")
        want("configStatus.lastError", (st["lastError"] is None) == (st["lastErrors"] == []),
             "lastError must be null exactly when lastErrors is empty")
        str_list("configStatus.lastErrors", st["lastErrors"])
        str_list("configStatus.warnings", st["warnings"])
        for k in ("reloadsSuccess", "reloadsFailure"):
            want(f"configStatus.{k}", is_uint(st[k]), "not a counter")
        want("configStatus.appliedSha256", is_str(st["appliedSha256"]), "expected a string")
    str_list("unsupported", doc.get("unsupported"))

    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
