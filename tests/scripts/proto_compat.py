#!/usr/bin/python3
"""proto_compat.py OURS.pb REFERENCE.pb [REFERENCE.pb...]: the project's protobuf declarations
are the wire contract with istiod and istio-cni only if every message, enum and field it declares
exists in the reference definitions with the same full name, number, type, label and (for message
and enum fields) the same referenced type, and every RPC it declares has the reference's request
and response types and streaming flags. Both inputs are FileDescriptorSets written by
`protoc --include_imports --descriptor_set_out`. Google's well-known types are not checked (both
sides import the same files). A message is looked up in each reference set in turn, so the
ztunnel copy and istio/istio's copy (which spell some authorization messages differently) both
serve as references. Prints one line per problem and exits 1 if there is any, else prints what
was checked and exits 0."""

import sys

from google.protobuf import descriptor_pb2

LABELS = {1: "optional", 2: "required", 3: "repeated"}


def load(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    return fds


def index(fds, only_files=None):
    """Returns (messages, enums, methods, own_files): full name -> descriptor proto."""
    messages, enums, methods, files = {}, {}, {}, []
    for f in fds.file:
        if f.name.startswith("google/protobuf/"):
            continue
        if only_files is not None and f.name not in only_files:
            continue
        files.append(f.name)
        prefix = "." + f.package if f.package else ""

        def walk(msg, scope):
            name = scope + "." + msg.name
            messages[name] = msg
            for nested in msg.nested_type:
                walk(nested, name)
            for enum in msg.enum_type:
                enums[name + "." + enum.name] = enum

        for msg in f.message_type:
            walk(msg, prefix)
        for enum in f.enum_type:
            enums[prefix + "." + enum.name] = enum
        for service in f.service:
            for method in service.method:
                methods[prefix + "." + service.name + "/" + method.name] = method
    return messages, enums, methods, files


def type_name(field):
    return descriptor_pb2.FieldDescriptorProto.Type.Name(field.type)


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    ours = index(load(argv[1]))
    refs = [index(load(p)) for p in argv[2:]]
    problems = []
    checked_fields = 0

    def find(kind, name):
        for ref in refs:
            table = ref[kind]
            if name in table:
                return table[name]
        return None

    for name, msg in sorted(ours[0].items()):
        ref = find(0, name)
        if ref is None:
            problems.append(f"message {name}: not in the reference")
            continue
        if bool(msg.options.map_entry) != bool(ref.options.map_entry):
            problems.append(f"message {name}: map entry on one side only")
        ref_fields = {f.name: f for f in ref.field}
        for field in msg.field:
            where = f"{name}.{field.name}"
            rf = ref_fields.get(field.name)
            if rf is None:
                problems.append(f"field {where}: not in the reference")
                continue
            checked_fields += 1
            if field.number != rf.number:
                problems.append(f"field {where}: number {field.number}, reference {rf.number}")
            if field.type != rf.type:
                problems.append(
                    f"field {where}: type {type_name(field)}, reference {type_name(rf)}")
            if field.label != rf.label:
                problems.append(f"field {where}: {LABELS[field.label]}, reference "
                                f"{LABELS[rf.label]}")
            if field.type_name != rf.type_name:
                problems.append(f"field {where}: refers to {field.type_name}, reference "
                                f"{rf.type_name}")
            ours_oneof = field.HasField("oneof_index") and not field.proto3_optional
            ref_oneof = rf.HasField("oneof_index") and not rf.proto3_optional
            if ours_oneof != ref_oneof:
                problems.append(f"field {where}: in a oneof on one side only")
            elif ours_oneof and (msg.oneof_decl[field.oneof_index].name !=
                                 ref.oneof_decl[rf.oneof_index].name):
                problems.append(f"field {where}: oneof {msg.oneof_decl[field.oneof_index].name}, "
                                f"reference {ref.oneof_decl[rf.oneof_index].name}")
    for name, enum in sorted(ours[1].items()):
        ref = find(1, name)
        if ref is None:
            problems.append(f"enum {name}: not in the reference")
            continue
        ref_values = {v.name: v.number for v in ref.value}
        for value in enum.value:
            if value.name not in ref_values:
                problems.append(f"enum value {name}.{value.name}: not in the reference")
            elif ref_values[value.name] != value.number:
                problems.append(f"enum value {name}.{value.name}: {value.number}, reference "
                                f"{ref_values[value.name]}")
    for name, method in sorted(ours[2].items()):
        ref = find(2, name)
        if ref is None:
            problems.append(f"rpc {name}: not in the reference")
            continue
        for attr in ("input_type", "output_type", "client_streaming", "server_streaming"):
            if getattr(method, attr) != getattr(ref, attr):
                problems.append(f"rpc {name}: {attr} {getattr(method, attr)}, reference "
                                f"{getattr(ref, attr)}")
    for p in problems:
        print("proto_compat:", p)
    if problems:
        return 1
    print(f"proto_compat: ok: {len(ours[0])} messages, {checked_fields} fields, "
          f"{len(ours[1])} enums, {len(ours[2])} rpcs in {', '.join(ours[3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
