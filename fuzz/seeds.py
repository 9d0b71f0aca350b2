#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into corpus/NAME/seed-*.

The seeds are small, valid inputs taken from the example node and the
incident snapshot; the fuzzer grows the corpora from them. Rerun after a
format change: `python3 fuzz/seeds.py`.
"""
import gzip
import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
NODE = REPO / "examples/node-boromir"
INCIDENT = REPO / "examples/incident-2026-01-31/snapshot.json"


def seed(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


seed("subnet_env", "k3s", "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
seed("subnet_env", "dual", "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
seed("subnet_env", "crlf", "FLANNEL_NETWORK=10.42.0.0/16\r\nFLANNEL_SUBNET=10.42.0.1/24\r\nFLANNEL_MTU=1450\r\n")
seed("net_conf", "example", (NODE / "var/lib/rancher/k3s/agent/etc/flannel/net-conf.json").read_bytes())
seed("net_conf", "wireguard", '{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":25}}')
seed("k3s_config", "example", (NODE / "etc/rancher/k3s/config.yaml").read_bytes())
seed("k3s_config", "number", "node-name: 1234\nnode-label:\n  - a=b\n")
seed("settings", "example", (NODE / "etc/rebootguard/config.toml").read_bytes())
seed("settings", "duration", "timeout = \"1500ms\"\n")
conflist = json.loads((NODE / "var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist").read_text())
plugin = dict(conflist["plugins"][0], name=conflist["name"], cniVersion=conflist["cniVersion"])
seed("cni_config", "k3s", json.dumps(plugin).encode() + b"\0new")
seed("store_format", "example", bytes([1]) + (NODE / "var/lib/rebootguard/subnet-env.000001").read_bytes())

incident = json.loads(INCIDENT.read_text())
node = incident["nodes"][0]
pods = [p for p in incident["pods"] if p["spec"].get("nodeName") == node["metadata"]["name"]][:3]
events = incident["events"][:4]
small = {k: v for k, v in incident.items() if not isinstance(v, list)}
small.update(nodes=[node], pods=pods, events=events)
seed("snapshot", "rebootguard", json.dumps(small, separators=(",", ":")))
items = [dict(o) for o in [node, *pods, *events]]
listed = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
seed("snapshot", "kubectl-list", json.dumps(listed, separators=(",", ":")))
seed("snapshot", "kubectl-list-gz", gzip.compress(json.dumps(listed).encode(), mtime=0))
seed("snapshot", "yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: n1}\n  status:\n    conditions: [{type: Ready, status: 'False'}]\n")
seed("cluster_info_dump", "nodes-pods", b"\x00" + json.dumps({"kind": "NodeList", "items": [node]}).encode()
     + b"\xff\x01" + json.dumps({"kind": "PodList", "items": pods}).encode()
     + b"\xff\x04" + b"[ERROR] plugin/errors: 2 example.org. A: read udp 10.42.0.5:53->1.1.1.1:53: i/o timeout\n")
for i, sel in enumerate(["app=web,tier!=db", "app in (web,api),!gone", "spec.nodeName=node1,status.phase!=Failed", "a\\,b=c"]):
    seed("selectors", f"query-{i}", sel)
seed("selectors", "label-selector", '{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"Exists"}]}')
target = b'{"metadata":{"name":"n1","labels":{"a":"b"}},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}'
seed("patch", "merge", b"\x00" + target + b"\0" + b'{"metadata":{"labels":{"a":null,"c":"d"}},"spec":{"unschedulable":true}}')
seed("patch", "json", b"\x01" + target + b"\0" + b'[{"op":"add","path":"/spec/taints/-","value":{"key":"x"}},{"op":"test","path":"/metadata/name","value":"n1"},{"op":"remove","path":"/metadata/labels/a"}]')
seed("patch", "strategic", b"\x02" + target + b"\0" + b'{"spec":{"taints":[{"key":"k","$patch":"delete"}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
seed("patch", "apply", b"\x03" + target + b"\0" + b'{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","annotations":{"x":"y"}}}')


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field (strings, bytes, messages)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def number(number_, value):
    return varint(number_ << 3) + varint(value)


def unknown(api_version, kind, raw):
    """kubectl's body: `k8s\0` + runtime.Unknown{typeMeta, raw}."""
    return b"k8s\0" + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def label(key, value):
    return field(11, field(1, key) + field(2, value))


meta = field(1, field(1, "team-a") + label("team", "a"))
seed("protobuf", "namespace", unknown("v1", "Namespace", meta))
cm = field(1, field(1, "cfg") + field(3, "default")) + field(2, field(1, "a") + field(2, "b"))
seed("protobuf", "configmap", unknown("v1", "ConfigMap", cm))
container = field(1, "nginx") + field(2, "nginx:1.27")
template = field(1, label("app", "web")) + field(2, field(2, container))
spec = number(1, 2) + field(2, field(1, field(1, "app") + field(2, "web"))) + field(3, template)
seed("protobuf", "deployment", unknown("apps/v1", "Deployment", field(1, field(1, "web")) + field(2, spec)))
print("seeds written under", HERE / "corpus")
seed("request", "list-pods", b"GET\0/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Dp\0Bearer kubesim.0")
seed("request", "eviction", b"POST\0/api/v1/namespaces/default/pods/web/eviction\0Bearer t")
seed("request", "discovery", b"GET\0/apis/apps/v1\0")
seed("admission", "pod", b"\x00" + json.dumps({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}}).encode())
seed("admission", "service", b"\x01" + json.dumps({"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "ports": [{"port": 53, "protocol": "UDP"}]}}).encode())
seed("admission", "deployment", b"\x03" + json.dumps({"metadata": {"name": "d"}, "spec": {"strategy": {}, "template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}).encode())
seed("cni_env", "containerd", b"IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-6799fbcd5-x2x9q;K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=4f2c\x000123abcd\x00eth0")
seed("cni_env", "odd", b"a;;=b;c=d=e;f\x00\x00")
