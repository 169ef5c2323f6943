#!/usr/bin/env python3
"""Generates the AMQP method codec from the 0-9-1 spec XML, with the 0-8 dialect from the 0-8 XML.

Usage: python3 gen_methods.py SPEC_XML SPEC_0_8_XML OUT_DIR

Writes OUT_DIR/methods.h, OUT_DIR/methods.cc and OUT_DIR/methods_testing.h:
  * one struct per method in namespace warren::amqp::method (ClassName + MethodName, CamelCase),
    with snake_case fields, Encode()/DecodeArguments() and a defaulted operator==;
  * `Method`, a std::variant over all of them, plus DecodeMethod/EncodeMethod/MethodName/MethodIds;
  * methods_testing.h: `SampleMethod<T>()` returning a T whose every field is non-default
    (used by the round-trip tests only).

Field domains are resolved to primitive types through the spec's <domain> elements. The RabbitMQ
extensions missing from the stripped XML (connection.blocked/unblocked/update-secret[-ok], and the
access class RabbitMQ still answers) are added here.

AMQP 0-8 is not a second set of structs: each 0-9-1 method is matched by name with its 0-8
counterpart (RabbitMQ's variant of 0-8, see RABBIT_0_8_*), whose arguments must be a prefix of the
0-9-1 ones by type. Encode/DecodeArguments/DecodeMethod take the Protocol and, for 0-8, use the
0-8 method id and stop after the 0-8 arguments (the rest stay default). Methods 0-8 lacks are
unknown when decoding 0-8 (kIn0_8 is false). Only the Python standard library is used; output
is deterministic.
"""

import os
import sys
import xml.etree.ElementTree as ET

PRIMITIVES = {
    # AMQP type -> (C++ type, default initialiser)
    "octet": ("uint8_t", "0"),
    "short": ("uint16_t", "0"),
    "long": ("uint32_t", "0"),
    "longlong": ("uint64_t", "0"),
    "timestamp": ("uint64_t", "0"),
    "bit": ("bool", "false"),
    "shortstr": ("std::string_view", None),
    "longstr": ("std::string_view", None),
    "table": ("FieldTable", None),
}

# RabbitMQ methods absent from amqp0-9-1.stripped.extended.xml: (class, class index, name, index,
# fields). RabbitMQ's 0-9-1 codegen keeps 0-8's access class and answers access.request.
EXTRA_METHODS = [
    ("connection", 10, "blocked", 60, [("reason", "shortstr")]),
    ("connection", 10, "unblocked", 61, []),
    ("connection", 10, "update-secret", 70, [("new-secret", "longstr"), ("reason", "shortstr")]),
    ("connection", 10, "update-secret-ok", 71, []),
    ("access", 30, "request", 10, [("realm", "shortstr"), ("exclusive", "bit"), ("passive", "bit"),
                                   ("active", "bit"), ("write", "bit"), ("read", "bit")]),
    ("access", 30, "request-ok", 11, [("ticket", "short")]),
]

# RabbitMQ's 0-8 (amqp-rabbitmq-0.8.json) differs from the 0-8 XML: 0-8's basic.recover (100) is
# its recover-async, and it adds 0-9-1's queue.unbind and synchronous basic.recover.
RABBIT_0_8_RENAMES = {("basic", "recover"): "recover-async"}
RABBIT_0_8_EXTRA = [
    ("queue", "unbind", 50, ["short", "shortstr", "shortstr", "shortstr", "table"]),
    ("queue", "unbind-ok", 51, []),
    ("basic", "recover", 110, ["bit"]),
    ("basic", "recover-ok", 111, []),
]

CPP_KEYWORDS = {
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break",
    "case", "catch", "char", "class", "compl", "concept", "const", "consteval", "constexpr",
    "constinit", "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype",
    "default", "delete", "do", "double", "dynamic_cast", "else", "enum", "explicit", "export",
    "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long",
    "mutable", "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or",
    "or_eq", "private", "protected", "public", "register", "reinterpret_cast", "requires",
    "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct",
    "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid",
    "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while",
    "xor", "xor_eq",
}


def camel(name):
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))


def snake(name):
    ident = name.replace("-", "_")
    if ident in CPP_KEYWORDS:
        ident += "_"
    return ident


class Field:
    def __init__(self, xml_name, amqp_type):
        self.xml_name = xml_name
        self.name = snake(xml_name)
        self.amqp_type = amqp_type
        self.cpp_type, self.default = PRIMITIVES[amqp_type]


class Method:
    def __init__(self, class_name, class_id, name, method_id, has_content, fields):
        self.class_name = class_name
        self.class_id = class_id
        self.name = name
        self.method_id = method_id
        self.has_content = has_content
        self.fields = fields
        self.struct = camel(class_name) + camel(name)
        self.full_name = f"{class_name}.{name}"
        # Set by add_0_8: the 0-8 method id (None: not in 0-8) and how many leading fields 0-8 has.
        self.method_id_0_8 = None
        self.fields_0_8 = len(fields)


def field_types(spec_path):
    """{(class, method): (class index, method index, [primitive types])} of a spec XML."""
    root = ET.parse(spec_path).getroot()
    resolve = domain_resolver(root)
    out = {}
    for cls in root.findall("class"):
        for m in cls.findall("method"):
            out[(cls.get("name"), m.get("name"))] = (int(cls.get("index")), int(m.get("index")),
                                                      [resolve(f) for f in m.findall("field")])
    return out


def domain_resolver(root):
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}

    def resolve(field_el):
        t = field_el.get("type") or field_el.get("domain")
        seen = set()
        while t not in PRIMITIVES:
            if t in seen or t not in domains:
                raise SystemExit(f"cannot resolve domain {t!r} of field {field_el.get('name')!r}")
            seen.add(t)
            t = domains[t]
        return t

    return resolve


def load(spec_path):
    root = ET.parse(spec_path).getroot()
    resolve = domain_resolver(root)
    methods = []
    class_ids = {}
    for cls in root.findall("class"):
        cname = cls.get("name")
        cid = int(cls.get("index"))
        class_ids[cname] = cid
        for m in cls.findall("method"):
            fields = [Field(f.get("name"), resolve(f)) for f in m.findall("field")]
            methods.append(Method(cname, cid, m.get("name"), int(m.get("index")),
                                  m.get("content") == "1", fields))

    existing = {(m.class_id, m.method_id) for m in methods}
    for cname, cid, mname, mid, fields in EXTRA_METHODS:
        if class_ids.setdefault(cname, cid) != cid:
            raise SystemExit(f"class {cname} has index {class_ids[cname]}, not {cid}")
        if (cid, mid) in existing:
            continue  # a spec that already has it wins
        methods.append(Method(cname, cid, mname, mid, False,
                              [Field(n, t) for n, t in fields]))

    methods.sort(key=lambda m: (m.class_id, m.method_id))
    ids = [(m.class_id, m.method_id) for m in methods]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate (class, method) ids in spec")
    names = [m.struct for m in methods]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate struct names in spec")
    return methods


def add_0_8(methods, spec_0_8):
    """Records on each method its 0-8 id and argument count (RabbitMQ's 0-8)."""
    spec = {}
    for (cname, mname), entry in field_types(spec_0_8).items():
        spec[(cname, RABBIT_0_8_RENAMES.get((cname, mname), mname))] = entry
    for cname, mname, mid, types in RABBIT_0_8_EXTRA:
        cid = next(c for (n, _), (c, _, _) in spec.items() if n == cname)
        spec[(cname, mname)] = (cid, mid, types)
    for m in methods:
        entry = spec.get((m.class_name, m.name))
        if entry is None:
            continue
        cid, mid, types = entry
        if cid != m.class_id or types != [f.amqp_type for f in m.fields[:len(types)]]:
            raise SystemExit(f"0-8 {m.full_name} is not a prefix of 0-9-1's: {types}")
        if 0 < len(types) < len(m.fields) and types[-1] == "bit" and m.fields[len(types)].amqp_type == "bit":
            raise SystemExit(f"0-8 {m.full_name} ends inside a run of bits")
        m.method_id_0_8 = mid
        m.fields_0_8 = len(types)
    ids = [(m.class_id, m.method_id_0_8) for m in methods if m.method_id_0_8 is not None]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate (class, method) ids in 0-8")


def bit_runs(fields):
    """Yields ('bits', [fields]) for each run of consecutive bits (max 8 per octet) and
    ('field', field) for every other field, in wire order."""
    run = []
    for f in fields:
        if f.amqp_type == "bit":
            run.append(f)
            if len(run) == 8:
                yield ("bits", run)
                run = []
            continue
        if run:
            yield ("bits", run)
            run = []
        yield ("field", f)
    if run:
        yield ("bits", run)


WRITE = {
    "octet": "w.WriteU8({v});",
    "short": "w.WriteU16({v});",
    "long": "w.WriteU32({v});",
    "longlong": "w.WriteU64({v});",
    "timestamp": "w.WriteU64({v});",
    "shortstr": "w.WriteShortStr({v});",
    "longstr": "w.WriteLongStr({v});",
    "table": "EncodeFieldTable({v}, w);",
}

READ = {
    "octet": "{v} = r.ReadU8();",
    "short": "{v} = r.ReadU16();",
    "long": "{v} = r.ReadU32();",
    "longlong": "{v} = r.ReadU64();",
    "timestamp": "{v} = r.ReadU64();",
    "shortstr": "{v} = r.ReadShortStr();",
    "longstr": "{v} = r.ReadLongStr();",
    "table": "if (!DecodeFieldTable(r, &{v})) return false;",
}

BANNER = "// Generated by server/amqp/codegen/gen_methods.py from {spec}. Do not edit.\n"


def gen_header(methods, spec):
    out = [BANNER.format(spec=os.path.basename(spec))]
    out.append("""//
// AMQP 0-9-1 methods (RabbitMQ dialect): one struct per method in namespace
// warren::amqp::method, named CamelCase(class) + CamelCase(method), e.g. method::BasicPublish.
//
// Each struct has:
//   kClassId, kMethodId, kName ("basic.publish"), kHasContent (method carries a message);
//   fields named after the spec (snake_case), default-initialised (numbers 0, bools false);
//   kIn0_8 (RabbitMQ's AMQP 0-8 has the method);
//   Encode(w, p)            appends class-id, method-id and the arguments (a method frame payload);
//   DecodeArguments(r, p)   reads the arguments only; returns r.ok().
// Consecutive bit fields are packed LSB-first into octets, as the spec requires. In Protocol::k0_8
// a method may have another id (connection.close) and fewer arguments (channel.open-ok,
// basic.consume): those it lacks are not written, and stay default when decoding. A method without
// kIn0_8 is encoded as in 0-9-1: it must not be sent on a 0-8 connection.
//
// LIFETIME: std::string_view fields (shortstr/longstr) produced by decoding are views into the
// decoded payload (zero-copy); they are valid only while that buffer is. Copy what you keep.
// FieldTable fields own their data.
#pragma once

#include <cstdint>
#include <expected>
#include <string_view>
#include <utility>
#include <variant>

#include "server/amqp/byte_buffer.h"
#include "server/amqp/field_table.h"
#include "server/amqp/protocol.h"

namespace warren::amqp {
namespace method {
""")
    for m in methods:
        out.append(f"// {m.full_name} ({m.class_id}, {m.method_id})\n")
        out.append(f"struct {m.struct} {{\n")
        out.append(f"  static constexpr uint16_t kClassId = {m.class_id};\n")
        out.append(f"  static constexpr uint16_t kMethodId = {m.method_id};\n")
        out.append(f'  static constexpr std::string_view kName = "{m.full_name}";\n')
        out.append(f"  static constexpr bool kHasContent = {'true' if m.has_content else 'false'};\n")
        out.append(f"  static constexpr bool kIn0_8 = {'true' if m.method_id_0_8 is not None else 'false'};\n")
        if m.fields:
            out.append("\n")
        for f in m.fields:
            init = f" = {f.default}" if f.default is not None else ""
            out.append(f"  {f.cpp_type} {f.name}{init};\n")
        out.append("\n")
        out.append("  void Encode(ByteWriter& w, Protocol p = Protocol::k0_9_1) const;\n")
        out.append("  bool DecodeArguments(ByteReader& r, Protocol p = Protocol::k0_9_1);\n")
        out.append(f"  bool operator==(const {m.struct}&) const = default;\n")
        out.append("};\n\n")
    out.append("}  // namespace method\n\n")

    out.append("// Every method, ordered by (class id, method id).\n")
    out.append("using Method = std::variant<\n")
    out.append(",\n".join(f"    method::{m.struct}" for m in methods))
    out.append(">;\n\n")
    out.append("""enum class DecodeError {
  kUnknownMethod,  // class-id/method-id pair not known
  kMalformed,      // truncated payload, bad arguments or trailing bytes
  kMalformedUtf8,  // a short string that is not UTF-8 (every method but basic.publish, as RabbitMQ)
};

// Decodes a whole method frame payload (class-id u16, method-id u16, arguments) as `protocol`
// frames it. The arguments must occupy the rest of the payload exactly. String fields of the
// result view into `payload`.
std::expected<Method, DecodeError> DecodeMethod(std::string_view payload, Protocol protocol = Protocol::k0_9_1);

// Appends the method frame payload of `m` (same as calling Encode on the alternative).
void EncodeMethod(const Method& m, ByteWriter& w, Protocol protocol = Protocol::k0_9_1);

// "basic.publish" for (60, 40); "" when the pair is unknown. Ids are 0-9-1's, as MethodIds gives.
std::string_view MethodName(uint16_t class_id, uint16_t method_id);
// (class id, method id) of the held alternative.
std::pair<uint16_t, uint16_t> MethodIds(const Method& m);
// kName of the held alternative.
std::string_view MethodName(const Method& m);

}  // namespace warren::amqp
""")
    return "".join(out)


def gen_source(methods, spec):
    out = [BANNER.format(spec=os.path.basename(spec))]
    out.append("""#include "server/amqp/methods.h"

#include <type_traits>

#include "server/amqp/utf8.h"

namespace warren::amqp {
namespace method {

""")
    for m in methods:
        in_0_8 = m.method_id_0_8 is not None
        shorter_0_8 = in_0_8 and m.fields_0_8 < len(m.fields)
        other_id_0_8 = in_0_8 and m.method_id_0_8 != m.method_id
        method_id = f"p == Protocol::k0_8 ? {m.method_id_0_8} : kMethodId" if other_id_0_8 else "kMethodId"
        enc_param = "Protocol p" if shorter_0_8 or other_id_0_8 else "Protocol"
        dec_param = "Protocol p" if shorter_0_8 else "Protocol"
        enc = [f"void {m.struct}::Encode(ByteWriter& w, {enc_param}) const {{\n",
               "  w.WriteU16(kClassId);\n", f"  w.WriteU16({method_id});\n"]
        dec = [f"bool {m.struct}::DecodeArguments(ByteReader& r, {dec_param}) {{\n"]
        if not m.fields:
            dec.append("  (void)r;\n")
        written = 0
        for kind, item in bit_runs(m.fields):
            if in_0_8 and written == m.fields_0_8 < len(m.fields):
                enc.append("  if (p == Protocol::k0_8) return;\n")
                dec.append("  if (p == Protocol::k0_8) return r.ok();\n")
            written += len(item) if kind == "bits" else 1
            if kind == "bits":
                enc.append("  {\n")
                enc.append("    uint8_t bits = 0;\n")
                for i, f in enumerate(item):
                    enc.append(f"    if ({f.name}) bits |= 0x{1 << i:02x};\n")
                enc.append("    w.WriteU8(bits);\n")
                enc.append("  }\n")
                dec.append("  {\n")
                dec.append("    const uint8_t bits = r.ReadU8();\n")
                for i, f in enumerate(item):
                    dec.append(f"    {f.name} = (bits & 0x{1 << i:02x}) != 0;\n")
                dec.append("  }\n")
            else:
                enc.append("  " + WRITE[item.amqp_type].format(v=item.name) + "\n")
                dec.append("  " + READ[item.amqp_type].format(v=item.name) + "\n")
        enc.append("}\n\n")
        dec.append("  return r.ok();\n}\n\n")
        out.extend(enc)
        out.extend(dec)
    out.append("}  // namespace method\n\n")

    utf8 = []
    for m in methods:
        names = [f.name for f in m.fields if f.amqp_type == "shortstr"]
        # basic.publish is RabbitMQ's fast path: it checks no short string (the exchange is
        # looked up, the routing key taken as bytes); so does Warren's hot path.
        if not names or m.full_name == "basic.publish":
            continue
        utf8.append(f"bool ShortStrsAreUtf8(const method::{m.struct}& m) {{\n")
        utf8.append("  return " + " && ".join(f"IsValidUtf8(m.{n})" for n in names) + ";\n}\n\n")
    out.append("""namespace {

constexpr uint32_t Key(uint16_t class_id, uint16_t method_id) {
  return (static_cast<uint32_t>(class_id) << 16) | method_id;
}

// Whether every short string of a method is UTF-8; overloads below for the methods that have
// short strings.
template <typename T>
bool ShortStrsAreUtf8(const T&) {
  return true;
}

@UTF8@
template <typename T>
std::expected<Method, DecodeError> DecodeAs(ByteReader& r, Protocol p) {
  T m;
  if (!m.DecodeArguments(r, p) || !r.empty()) return std::unexpected(DecodeError::kMalformed);
  if (!ShortStrsAreUtf8(m)) return std::unexpected(DecodeError::kMalformedUtf8);
  return Method(std::in_place_type<T>, std::move(m));
}

std::expected<Method, DecodeError> Decode0_8(uint16_t class_id, uint16_t method_id, ByteReader& r) {
  switch (Key(class_id, method_id)) {
""".replace("@UTF8@\n", "".join(utf8)))
    for m in methods:
        if m.method_id_0_8 is None:
            continue
        out.append(f"    case Key({m.class_id}, {m.method_id_0_8}):\n")
        out.append(f"      return DecodeAs<method::{m.struct}>(r, Protocol::k0_8);\n")
    out.append("""    default:
      return std::unexpected(DecodeError::kUnknownMethod);
  }
}

}  // namespace

std::expected<Method, DecodeError> DecodeMethod(std::string_view payload, Protocol protocol) {
  ByteReader r(payload);
  const uint16_t class_id = r.ReadU16();
  const uint16_t method_id = r.ReadU16();
  if (!r.ok()) return std::unexpected(DecodeError::kMalformed);
  if (protocol == Protocol::k0_8) return Decode0_8(class_id, method_id, r);
  switch (Key(class_id, method_id)) {
""")
    for m in methods:
        out.append(f"    case Key({m.class_id}, {m.method_id}):\n")
        out.append(f"      return DecodeAs<method::{m.struct}>(r, Protocol::k0_9_1);\n")
    out.append("""    default:
      return std::unexpected(DecodeError::kUnknownMethod);
  }
}

void EncodeMethod(const Method& m, ByteWriter& w, Protocol protocol) {
  std::visit([&w, protocol](const auto& x) { x.Encode(w, protocol); }, m);
}

std::string_view MethodName(uint16_t class_id, uint16_t method_id) {
  switch (Key(class_id, method_id)) {
""")
    for m in methods:
        out.append(f"    case Key({m.class_id}, {m.method_id}):\n")
        out.append(f"      return method::{m.struct}::kName;\n")
    out.append("""    default:
      return {};
  }
}

std::pair<uint16_t, uint16_t> MethodIds(const Method& m) {
  return std::visit(
      [](const auto& x) -> std::pair<uint16_t, uint16_t> {
        using T = std::decay_t<decltype(x)>;
        return {T::kClassId, T::kMethodId};
      },
      m);
}

std::string_view MethodName(const Method& m) {
  return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kName; }, m);
}

}  // namespace warren::amqp
""")
    return "".join(out)


def sample_value(f, i):
    """A C++ expression for a non-default, field-specific value of f (i = field index)."""
    t = f.amqp_type
    if t == "octet":
        return f"0x{0xA0 + i:02x}"
    if t == "short":
        return f"0x{0xB100 + i:04x}"
    if t == "long":
        return f"0x{0xC2000000 + i:08x}u"
    if t in ("longlong", "timestamp"):
        return f"0x{0xD300000000000000 + i:016x}ull"
    if t == "bit":
        return "true"
    if t == "shortstr":
        return f'"{f.name}"'
    if t == "longstr":
        # Embedded NUL and high bytes: long strings are binary.
        return f'std::string_view("{f.name}\\0\\xff", {len(f.name) + 2})'
    if t == "table":
        return (f'FieldTable{{{{{{"{f.name}", FieldValue(int32_t({-1 - i}))}}, '
                f'{{"s", FieldValue(std::string("v"))}}}}}}')
    raise AssertionError(t)


def gen_testing(methods, spec):
    out = [BANNER.format(spec=os.path.basename(spec))]
    out.append("""//
// Test support: SampleMethod<T>() returns a method::T with every field set to a non-default,
// field-specific value (all bits true, strings named after their field, longstr with a NUL and
// a 0xff byte, tables with two entries). String views point at static storage.
#pragma once

#include <string>
#include <string_view>

#include "server/amqp/methods.h"

namespace warren::amqp::test_support {

template <typename T>
T SampleMethod();

""")
    for m in methods:
        out.append(f"template <>\ninline method::{m.struct} SampleMethod<method::{m.struct}>() {{\n")
        out.append(f"  method::{m.struct} m;\n")
        for i, f in enumerate(m.fields):
            out.append(f"  m.{f.name} = {sample_value(f, i)};\n")
        out.append("  return m;\n}\n\n")
    out.append("}  // namespace warren::amqp::test_support\n")
    return "".join(out)


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                # Touch so build systems see the output as up to date.
                os.utime(path)
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 4:
        sys.stderr.write("usage: gen_methods.py SPEC_XML SPEC_0_8_XML OUT_DIR\n")
        return 2
    spec, spec_0_8, out_dir = argv[1], argv[2], argv[3]
    methods = load(spec)
    add_0_8(methods, spec_0_8)
    os.makedirs(out_dir, exist_ok=True)
    write_if_changed(os.path.join(out_dir, "methods.h"), gen_header(methods, spec))
    write_if_changed(os.path.join(out_dir, "methods.cc"), gen_source(methods, spec))
    write_if_changed(os.path.join(out_dir, "methods_testing.h"), gen_testing(methods, spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
