//! Kubernetes protobuf request bodies, decoded into the JSON the JSON path
//! stores, so that typed clients (kubectl's `create namespace|configmap|
//! secret|deployment|serviceaccount|service`) can write to kubesim.
//!
//! Wire format (`application/vnd.kubernetes.protobuf`): the 4 bytes
//! `k8s\0`, then a `runtime.Unknown` message whose `typeMeta` names the
//! kind and whose `raw` bytes are the kind's own message.
//!
//! Key design decision: schemas are data. Each message type is a table of
//! field number → JSON name and type, written from the upstream
//! `generated.proto` files (k8s.io/api core/v1 and apps/v1, k8s.io/
//! apimachinery meta/v1, runtime, api/resource, util/intstr). The decoder
//! never guesses: a field number missing from a table is an error naming
//! the message and the number, so a gap shows up as a failed request
//! rather than as silently lost data.
//!
//! Go's generated marshallers write every non-pointer field, zero or not,
//! while its JSON encoder leaves zero `omitempty` fields out. So a field
//! declared with [`single`] drops zero values (`""`, `0`, `false`, a zero
//! `Time`), and one declared with [`optional`] (a Go pointer) keeps them:
//! `replicas: 0` or `automountServiceAccountToken: false` mean something.
//! Nested messages are always kept, as Go's JSON keeps struct values.

use base64::Engine;
use serde_json::{Map, Value};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The body does not start with `k8s\0`.
    #[error("the protobuf body lacks the k8s\\0 prefix")]
    Magic,
    /// The envelope names a kind kubesim has no schema for.
    #[error(
        "kubesim cannot decode protobuf bodies of kind {kind:?} in {api_version:?}: send JSON (Content-Type: application/json)"
    )]
    UnknownKind {
        /// `apiVersion` from the envelope.
        api_version: String,
        /// `kind` from the envelope.
        kind: String,
    },
    /// A field number that the message's schema does not list.
    #[error(
        "kubesim cannot decode field number {field} of protobuf message {message}: send JSON (Content-Type: application/json)"
    )]
    UnknownField {
        /// The message type, e.g. `PodSpec`.
        message: &'static str,
        /// The field number.
        field: u32,
    },
    /// The bytes are not valid protobuf for the schema.
    #[error("malformed protobuf in message {message}: {why}")]
    Malformed {
        /// The message type being decoded.
        message: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The envelope's raw bytes are encoded (e.g. gzip) or not protobuf.
    #[error("kubesim cannot decode a protobuf envelope with {0}")]
    Envelope(String),
}

/// What a field holds.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// `string`.
    Str,
    /// `int32`, `int64` (varint).
    Int,
    /// `bool`.
    Bool,
    /// `bytes`, a base64 string in JSON.
    Bytes,
    /// A nested message, a JSON object.
    Msg(&'static Message),
    /// A Go embedded struct (`json:",inline"`): its fields join the parent's.
    Inline(&'static Message),
    /// `map<string, T>`, a JSON object.
    Map(&'static Ty),
    /// `meta/v1` `Time` {1 seconds, 2 nanos}, an RFC 3339 string.
    Time,
    /// `resource.Quantity` {1 string}, a string.
    Quantity,
    /// `intstr.IntOrString` {1 type, 2 intVal, 3 strVal}, a number or string.
    IntOrString,
    /// `meta/v1` `FieldsV1` {1 raw JSON bytes}, the JSON it holds.
    FieldsV1,
}

/// How many values a field holds, and whether a zero value is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// A Go value field: zero values are dropped, as JSON `omitempty`.
    Single,
    /// A Go pointer field: sent only when set, so zero values are kept.
    Optional,
    /// `repeated`, a JSON array.
    Repeated,
}

/// One field of a message schema.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The protobuf field number.
    pub number: u32,
    /// The JSON name.
    pub name: &'static str,
    /// What it holds.
    pub ty: Ty,
    /// How many, and whether zeros are kept.
    pub card: Card,
}

/// A message schema.
#[derive(Debug)]
pub struct Message {
    /// The protobuf message name, for errors.
    pub name: &'static str,
    /// Its fields.
    pub fields: &'static [Field],
}

impl Message {
    fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

/// A Go value field.
pub const fn single(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        card: Card::Single,
    }
}

/// A Go pointer field.
pub const fn optional(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        card: Card::Optional,
    }
}

/// A repeated field.
pub const fn repeated(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        card: Card::Repeated,
    }
}

/// Whether a `Content-Type` header names Kubernetes protobuf.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// Decodes a whole body (`k8s\0` + `runtime.Unknown`) into the object's
/// JSON, `apiVersion` and `kind` included.
pub fn decode_object(body: &[u8]) -> Result<Value, Error> {
    let envelope = Envelope::read(body.strip_prefix(MAGIC).ok_or(Error::Magic)?)?;
    if !envelope.content_encoding.is_empty() {
        return Err(Error::Envelope(format!(
            "contentEncoding {:?}",
            envelope.content_encoding
        )));
    }
    if !envelope.content_type.is_empty() && !is_protobuf(&envelope.content_type) {
        return Err(Error::Envelope(format!(
            "contentType {:?}",
            envelope.content_type
        )));
    }
    let (api_version, kind) = envelope.type_meta;
    let schema = schema_of(&api_version, &kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), api_version.into());
    object.insert("kind".into(), kind.into());
    object.extend(decode_message(schema, envelope.raw)?);
    Ok(Value::Object(object))
}

/// `runtime.Unknown`: the kind's message bytes and how to read them.
struct Envelope<'a> {
    /// `(apiVersion, kind)`.
    type_meta: (String, String),
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

impl<'a> Envelope<'a> {
    fn read(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut envelope = Self {
            type_meta: (String::new(), String::new()),
            raw: &[],
            content_encoding: String::new(),
            content_type: String::new(),
        };
        let mut reader = Reader::new(bytes, UNKNOWN.name);
        while !reader.done() {
            let (number, wire) = reader.field()?;
            let field = UNKNOWN.field(number).ok_or(Error::UnknownField {
                message: UNKNOWN.name,
                field: number,
            })?;
            let bytes = bytes_of(&UNKNOWN, field, wire)?;
            match number {
                1 => {
                    let t = decode_message(&TYPE_META, bytes)?;
                    let text = |k: &str| {
                        t.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    envelope.type_meta = (text("apiVersion"), text("kind"));
                }
                2 => envelope.raw = bytes,
                3 => envelope.content_encoding = utf8(&UNKNOWN, field, bytes)?,
                _ => envelope.content_type = utf8(&UNKNOWN, field, bytes)?,
            }
        }
        Ok(envelope)
    }
}

/// The schema of a top-level kind, if kubesim has one.
pub fn schema_of(api_version: &str, kind: &str) -> Option<&'static Message> {
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, m)| *m)
}

/// One field's value as found on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Fixed32,
    Bytes(&'a [u8]),
}

/// Reads protobuf wire values from a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], message: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            message,
        }
    }

    fn malformed(&self, why: impl Into<String>) -> Error {
        Error::Malformed {
            message: self.message,
            why: why.into(),
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| self.malformed("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| self.malformed(format!("a length of {len} runs past the end")))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next field number and its value.
    fn field(&mut self) -> Result<(u32, Wire<'a>), Error> {
        let key = self.varint()?;
        let number =
            u32::try_from(key >> 3).map_err(|_| self.malformed("field number too large"))?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => self.take(8).map(|_| Wire::Fixed64)?,
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| self.malformed("length too large"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Wire::Fixed32)?,
            other => return Err(self.malformed(format!("unsupported wire type {other}"))),
        };
        if number == 0 {
            return Err(self.malformed("field number 0"));
        }
        Ok((number, wire))
    }
}

/// Decodes one message into a JSON object following `schema`.
pub fn decode_message(schema: &'static Message, bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    let mut reader = Reader::new(bytes, schema.name);
    while !reader.done() {
        let (number, wire) = reader.field()?;
        let field = schema.field(number).ok_or(Error::UnknownField {
            message: schema.name,
            field: number,
        })?;
        apply(schema, field, wire, &mut out)?;
    }
    Ok(out)
}

/// Adds one wire value of `field` to the object being built.
fn apply(
    schema: &'static Message,
    field: &Field,
    wire: Wire<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), Error> {
    match (field.ty, field.card) {
        (Ty::Inline(inner), _) => {
            out.extend(decode_message(inner, bytes_of(schema, field, wire)?)?);
        }
        (Ty::Map(value_ty), _) => {
            let (key, value) = map_entry(schema, field, value_ty, bytes_of(schema, field, wire)?)?;
            insert_entry(out, field.name, key, value);
        }
        (Ty::Int, Card::Repeated) if matches!(wire, Wire::Bytes(_)) => {
            // Packed repeated varints: accepted as any protobuf decoder does.
            let mut packed = Reader::new(bytes_of(schema, field, wire)?, schema.name);
            while !packed.done() {
                let n = packed.varint()?;
                push(out, field.name, int_value(n));
            }
        }
        (ty, Card::Repeated) => {
            let value = scalar(schema, field, ty, wire)?;
            push(out, field.name, value);
        }
        (ty, card) => {
            let value = scalar(schema, field, ty, wire)?;
            if card == Card::Optional || !is_zero(&value) {
                out.insert(field.name.to_owned(), value);
            } else {
                // A later zero value overrides an earlier one, as in protobuf.
                out.remove(field.name);
            }
        }
    }
    Ok(())
}

/// Sets `key` in the object at `out[name]`, creating it.
fn insert_entry(out: &mut Map<String, Value>, name: &str, key: String, value: Value) {
    match out
        .entry(name.to_owned())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(m) => {
            m.insert(key, value);
        }
        other => *other = Value::Object(Map::from_iter([(key, value)])),
    }
}

/// Appends `value` to the array at `out[name]`, creating it.
fn push(out: &mut Map<String, Value>, name: &str, value: Value) {
    match out
        .entry(name.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(a) => a.push(value),
        other => *other = Value::Array(vec![value]),
    }
}

/// Go's JSON `omitempty` zero values.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// A varint as the signed integer it encodes (int32 negatives are
/// sign-extended to 64 bits on the wire).
#[allow(clippy::cast_possible_wrap)]
fn int_value(n: u64) -> Value {
    Value::from(n as i64)
}

fn wrong_wire(schema: &'static Message, field: &Field, expected: &str) -> Error {
    Error::Malformed {
        message: schema.name,
        why: format!(
            "field {} ({}) should be {expected}",
            field.number, field.name
        ),
    }
}

fn bytes_of<'a>(
    schema: &'static Message,
    field: &Field,
    wire: Wire<'a>,
) -> Result<&'a [u8], Error> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        _ => Err(wrong_wire(schema, field, "length-delimited")),
    }
}

/// One value that is not a map entry or an inline struct.
fn scalar(schema: &'static Message, field: &Field, ty: Ty, wire: Wire<'_>) -> Result<Value, Error> {
    match ty {
        Ty::Int => match wire {
            Wire::Varint(n) => Ok(int_value(n)),
            _ => Err(wrong_wire(schema, field, "a varint")),
        },
        Ty::Bool => match wire {
            Wire::Varint(n) => Ok(Value::Bool(n != 0)),
            _ => Err(wrong_wire(schema, field, "a varint")),
        },
        Ty::Str => utf8(schema, field, bytes_of(schema, field, wire)?).map(Value::String),
        Ty::Bytes => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes_of(schema, field, wire)?),
        )),
        Ty::Msg(inner) => Ok(Value::Object(decode_message(
            inner,
            bytes_of(schema, field, wire)?,
        )?)),
        Ty::Time => time(bytes_of(schema, field, wire)?),
        Ty::Quantity => quantity(bytes_of(schema, field, wire)?),
        Ty::IntOrString => int_or_string(bytes_of(schema, field, wire)?),
        Ty::FieldsV1 => fields_v1(bytes_of(schema, field, wire)?),
        Ty::Inline(_) | Ty::Map(_) => Err(wrong_wire(schema, field, "a plain field")),
    }
}

fn utf8(schema: &'static Message, field: &Field, bytes: &[u8]) -> Result<String, Error> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| Error::Malformed {
            message: schema.name,
            why: format!("field {} ({}) is not UTF-8", field.number, field.name),
        })
}

/// A `map<string, T>` entry: a message with the key as field 1 and the
/// value as field 2.
fn map_entry(
    schema: &'static Message,
    field: &Field,
    value_ty: &'static Ty,
    bytes: &[u8],
) -> Result<(String, Value), Error> {
    let mut reader = Reader::new(bytes, schema.name);
    let (mut key, mut value) = (String::new(), None);
    while !reader.done() {
        match reader.field()? {
            (1, wire) => key = utf8(schema, field, bytes_of(schema, field, wire)?)?,
            (2, wire) => value = Some(scalar(schema, field, *value_ty, wire)?),
            (other, _) => {
                return Err(Error::Malformed {
                    message: schema.name,
                    why: format!("map {} has an entry with field {other}", field.name),
                });
            }
        }
    }
    // An entry without a value holds the type's zero value.
    let value = value.unwrap_or_else(|| match value_ty {
        Ty::Int => Value::from(0),
        Ty::Bool => Value::Bool(false),
        Ty::Msg(_) => Value::Object(Map::new()),
        _ => Value::String(String::new()),
    });
    Ok((key, value))
}

fn time(bytes: &[u8]) -> Result<Value, Error> {
    let t = decode_message(&TIME, bytes)?;
    match t.get("seconds").and_then(Value::as_i64) {
        // The zero Time is JSON null; kubesim leaves the key out instead.
        None | Some(0) if t.get("nanos").is_none() => Ok(Value::Null),
        seconds => Ok(Value::String(crate::time::format(seconds.unwrap_or(0)))),
    }
}

fn quantity(bytes: &[u8]) -> Result<Value, Error> {
    let q = decode_message(&QUANTITY, bytes)?;
    Ok(q.get("string")
        .cloned()
        .unwrap_or_else(|| Value::String("0".into())))
}

fn int_or_string(bytes: &[u8]) -> Result<Value, Error> {
    let v = decode_message(&INT_OR_STRING, bytes)?;
    let is_string = v.get("type").and_then(Value::as_i64) == Some(1);
    Ok(if is_string {
        v.get("strVal")
            .cloned()
            .unwrap_or_else(|| Value::String(String::new()))
    } else {
        v.get("intVal").cloned().unwrap_or_else(|| Value::from(0))
    })
}

fn fields_v1(bytes: &[u8]) -> Result<Value, Error> {
    let mut reader = Reader::new(bytes, FIELDS_V1_NAME);
    let mut raw: &[u8] = b"{}";
    while !reader.done() {
        match reader.field()? {
            (1, Wire::Bytes(b)) => raw = b,
            (field, _) => {
                return Err(Error::UnknownField {
                    message: FIELDS_V1_NAME,
                    field,
                });
            }
        }
    }
    serde_json::from_slice(raw).map_err(|e| Error::Malformed {
        message: FIELDS_V1_NAME,
        why: format!("Raw is not JSON: {e}"),
    })
}

const FIELDS_V1_NAME: &str = "FieldsV1";

// ---- Schemas. Field numbers from the upstream generated.proto files. ----

/// The kinds kubesim decodes: `(apiVersion, kind, schema)`.
static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "Secret", &SECRET),
    ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
    ("v1", "Service", &SERVICE),
    ("apps/v1", "Deployment", &DEPLOYMENT),
    ("autoscaling/v1", "Scale", &SCALE),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &SELF_SUBJECT_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &SELF_SUBJECT_ACCESS_REVIEW,
    ),
];

use Ty::{Bool, Bytes, Int, IntOrString, Msg, Quantity, Str, Time};

// k8s.io/apimachinery/pkg/runtime
static UNKNOWN: Message = Message {
    name: "Unknown",
    fields: &[
        single(1, "typeMeta", Msg(&TYPE_META)),
        single(2, "raw", Bytes),
        single(3, "contentEncoding", Str),
        single(4, "contentType", Str),
    ],
};

static TYPE_META: Message = Message {
    name: "TypeMeta",
    fields: &[single(1, "apiVersion", Str), single(2, "kind", Str)],
};

// k8s.io/apimachinery/pkg/apis/meta/v1, api/resource, util/intstr
static TIME: Message = Message {
    name: "Time",
    fields: &[single(1, "seconds", Int), single(2, "nanos", Int)],
};

static QUANTITY: Message = Message {
    name: "Quantity",
    fields: &[single(1, "string", Str)],
};

static INT_OR_STRING: Message = Message {
    name: "IntOrString",
    fields: &[
        single(1, "type", Int),
        single(2, "intVal", Int),
        single(3, "strVal", Str),
    ],
};

static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        single(1, "name", Str),
        single(2, "generateName", Str),
        single(3, "namespace", Str),
        single(4, "selfLink", Str),
        single(5, "uid", Str),
        single(6, "resourceVersion", Str),
        single(7, "generation", Int),
        single(8, "creationTimestamp", Time),
        optional(9, "deletionTimestamp", Time),
        optional(10, "deletionGracePeriodSeconds", Int),
        single(11, "labels", Ty::Map(&Str)),
        single(12, "annotations", Ty::Map(&Str)),
        repeated(13, "ownerReferences", Msg(&OWNER_REFERENCE)),
        repeated(14, "finalizers", Str),
        repeated(17, "managedFields", Msg(&MANAGED_FIELDS_ENTRY)),
    ],
};

static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        single(1, "kind", Str),
        single(3, "name", Str),
        single(4, "uid", Str),
        single(5, "apiVersion", Str),
        optional(6, "controller", Bool),
        optional(7, "blockOwnerDeletion", Bool),
    ],
};

static MANAGED_FIELDS_ENTRY: Message = Message {
    name: "ManagedFieldsEntry",
    fields: &[
        single(1, "manager", Str),
        single(2, "operation", Str),
        single(3, "apiVersion", Str),
        optional(4, "time", Time),
        single(6, "fieldsType", Str),
        optional(7, "fieldsV1", Ty::FieldsV1),
        single(8, "subresource", Str),
    ],
};

static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        single(1, "matchLabels", Ty::Map(&Str)),
        repeated(2, "matchExpressions", Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[
        single(1, "key", Str),
        single(2, "operator", Str),
        repeated(3, "values", Str),
    ],
};

static CONDITION: Message = Message {
    name: "Condition",
    fields: &[
        single(1, "type", Str),
        single(2, "status", Str),
        single(3, "observedGeneration", Int),
        single(4, "lastTransitionTime", Time),
        single(5, "reason", Str),
        single(6, "message", Str),
    ],
};

// k8s.io/api/core/v1: the kinds.
static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "spec", Msg(&NAMESPACE_SPEC)),
        single(3, "status", Msg(&NAMESPACE_STATUS)),
    ],
};

static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[repeated(1, "finalizers", Str)],
};

static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[
        single(1, "phase", Str),
        repeated(2, "conditions", Msg(&NAMESPACE_CONDITION)),
    ],
};

static NAMESPACE_CONDITION: Message = Message {
    name: "NamespaceCondition",
    fields: &[
        single(1, "type", Str),
        single(2, "status", Str),
        single(4, "lastTransitionTime", Time),
        single(5, "reason", Str),
        single(6, "message", Str),
    ],
};

static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "data", Ty::Map(&Str)),
        single(3, "binaryData", Ty::Map(&Bytes)),
        optional(4, "immutable", Bool),
    ],
};

static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "data", Ty::Map(&Bytes)),
        single(3, "type", Str),
        single(4, "stringData", Ty::Map(&Str)),
        optional(5, "immutable", Bool),
    ],
};

static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        repeated(2, "secrets", Msg(&OBJECT_REFERENCE)),
        repeated(3, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        optional(4, "automountServiceAccountToken", Bool),
    ],
};

static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        single(1, "kind", Str),
        single(2, "namespace", Str),
        single(3, "name", Str),
        single(4, "uid", Str),
        single(5, "apiVersion", Str),
        single(6, "resourceVersion", Str),
        single(7, "fieldPath", Str),
    ],
};

static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[single(1, "name", Str)],
};

static SERVICE: Message = Message {
    name: "Service",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "spec", Msg(&SERVICE_SPEC)),
        single(3, "status", Msg(&SERVICE_STATUS)),
    ],
};

static SERVICE_SPEC: Message = Message {
    name: "ServiceSpec",
    fields: &[
        repeated(1, "ports", Msg(&SERVICE_PORT)),
        single(2, "selector", Ty::Map(&Str)),
        single(3, "clusterIP", Str),
        single(4, "type", Str),
        repeated(5, "externalIPs", Str),
        single(7, "sessionAffinity", Str),
        single(8, "loadBalancerIP", Str),
        repeated(9, "loadBalancerSourceRanges", Str),
        single(10, "externalName", Str),
        single(11, "externalTrafficPolicy", Str),
        single(12, "healthCheckNodePort", Int),
        single(13, "publishNotReadyAddresses", Bool),
        optional(14, "sessionAffinityConfig", Msg(&SESSION_AFFINITY_CONFIG)),
        optional(17, "ipFamilyPolicy", Str),
        repeated(18, "clusterIPs", Str),
        repeated(19, "ipFamilies", Str),
        optional(20, "allocateLoadBalancerNodePorts", Bool),
        optional(21, "loadBalancerClass", Str),
        optional(22, "internalTrafficPolicy", Str),
        optional(23, "trafficDistribution", Str),
    ],
};

static SERVICE_PORT: Message = Message {
    name: "ServicePort",
    fields: &[
        single(1, "name", Str),
        single(2, "protocol", Str),
        single(3, "port", Int),
        single(4, "targetPort", IntOrString),
        single(5, "nodePort", Int),
        optional(6, "appProtocol", Str),
    ],
};

static SESSION_AFFINITY_CONFIG: Message = Message {
    name: "SessionAffinityConfig",
    fields: &[optional(1, "clientIP", Msg(&CLIENT_IP_CONFIG))],
};

static CLIENT_IP_CONFIG: Message = Message {
    name: "ClientIPConfig",
    fields: &[optional(1, "timeoutSeconds", Int)],
};

static SERVICE_STATUS: Message = Message {
    name: "ServiceStatus",
    fields: &[
        single(1, "loadBalancer", Msg(&LOAD_BALANCER_STATUS)),
        repeated(2, "conditions", Msg(&CONDITION)),
    ],
};

static LOAD_BALANCER_STATUS: Message = Message {
    name: "LoadBalancerStatus",
    fields: &[repeated(1, "ingress", Msg(&LOAD_BALANCER_INGRESS))],
};

static LOAD_BALANCER_INGRESS: Message = Message {
    name: "LoadBalancerIngress",
    fields: &[
        single(1, "ip", Str),
        single(2, "hostname", Str),
        optional(3, "ipMode", Str),
        repeated(4, "ports", Msg(&PORT_STATUS)),
    ],
};

static PORT_STATUS: Message = Message {
    name: "PortStatus",
    fields: &[
        single(1, "port", Int),
        single(2, "protocol", Str),
        optional(3, "error", Str),
    ],
};

// k8s.io/api/core/v1: pod templates.
static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "spec", Msg(&POD_SPEC)),
    ],
};

/// PodSpec without affinity, hostAliases, dnsConfig, readinessGates,
/// topologySpreadConstraints, os, schedulingGates, resourceClaims and
/// ephemeral containers, which kubectl's generators never set.
static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        repeated(1, "volumes", Msg(&VOLUME)),
        repeated(2, "containers", Msg(&CONTAINER)),
        single(3, "restartPolicy", Str),
        optional(4, "terminationGracePeriodSeconds", Int),
        optional(5, "activeDeadlineSeconds", Int),
        single(6, "dnsPolicy", Str),
        single(7, "nodeSelector", Ty::Map(&Str)),
        single(8, "serviceAccountName", Str),
        single(9, "serviceAccount", Str),
        single(10, "nodeName", Str),
        single(11, "hostNetwork", Bool),
        single(12, "hostPID", Bool),
        single(13, "hostIPC", Bool),
        optional(14, "securityContext", Msg(&POD_SECURITY_CONTEXT)),
        repeated(15, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        single(16, "hostname", Str),
        single(17, "subdomain", Str),
        single(19, "schedulerName", Str),
        repeated(20, "initContainers", Msg(&CONTAINER)),
        optional(21, "automountServiceAccountToken", Bool),
        repeated(22, "tolerations", Msg(&TOLERATION)),
        single(24, "priorityClassName", Str),
        optional(25, "priority", Int),
        optional(27, "shareProcessNamespace", Bool),
        optional(29, "runtimeClassName", Str),
        optional(30, "enableServiceLinks", Bool),
        optional(31, "preemptionPolicy", Str),
        single(32, "overhead", Ty::Map(&Quantity)),
        optional(35, "setHostnameAsFQDN", Bool),
        optional(37, "hostUsers", Bool),
        optional(40, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        optional(41, "hostnameOverride", Str),
    ],
};

static POD_SECURITY_CONTEXT: Message = Message {
    name: "PodSecurityContext",
    fields: &[
        optional(2, "runAsUser", Int),
        optional(3, "runAsNonRoot", Bool),
        repeated(4, "supplementalGroups", Int),
        optional(5, "fsGroup", Int),
        optional(6, "runAsGroup", Int),
        repeated(7, "sysctls", Msg(&SYSCTL)),
        optional(9, "fsGroupChangePolicy", Str),
        optional(10, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        optional(12, "supplementalGroupsPolicy", Str),
        optional(13, "seLinuxChangePolicy", Str),
    ],
};

static SYSCTL: Message = Message {
    name: "Sysctl",
    fields: &[single(1, "name", Str), single(2, "value", Str)],
};

static SECCOMP_PROFILE: Message = Message {
    name: "SeccompProfile",
    fields: &[single(1, "type", Str), optional(2, "localhostProfile", Str)],
};

static TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        single(1, "key", Str),
        single(2, "operator", Str),
        single(3, "value", Str),
        single(4, "effect", Str),
        optional(5, "tolerationSeconds", Int),
    ],
};

/// Container without lifecycle hooks, volume devices and restart rules.
static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        single(1, "name", Str),
        single(2, "image", Str),
        repeated(3, "command", Str),
        repeated(4, "args", Str),
        single(5, "workingDir", Str),
        repeated(6, "ports", Msg(&CONTAINER_PORT)),
        repeated(7, "env", Msg(&ENV_VAR)),
        single(8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        repeated(9, "volumeMounts", Msg(&VOLUME_MOUNT)),
        optional(10, "livenessProbe", Msg(&PROBE)),
        optional(11, "readinessProbe", Msg(&PROBE)),
        single(13, "terminationMessagePath", Str),
        single(14, "imagePullPolicy", Str),
        optional(15, "securityContext", Msg(&SECURITY_CONTEXT)),
        single(16, "stdin", Bool),
        single(17, "stdinOnce", Bool),
        single(18, "tty", Bool),
        repeated(19, "envFrom", Msg(&ENV_FROM_SOURCE)),
        single(20, "terminationMessagePolicy", Str),
        optional(22, "startupProbe", Msg(&PROBE)),
        repeated(23, "resizePolicy", Msg(&CONTAINER_RESIZE_POLICY)),
        optional(24, "restartPolicy", Str),
    ],
};

static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        single(1, "name", Str),
        single(2, "hostPort", Int),
        single(3, "containerPort", Int),
        single(4, "protocol", Str),
        single(5, "hostIP", Str),
    ],
};

static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[
        single(1, "name", Str),
        single(2, "value", Str),
        optional(3, "valueFrom", Msg(&ENV_VAR_SOURCE)),
    ],
};

static ENV_VAR_SOURCE: Message = Message {
    name: "EnvVarSource",
    fields: &[
        optional(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        optional(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        optional(3, "configMapKeyRef", Msg(&KEY_SELECTOR)),
        optional(4, "secretKeyRef", Msg(&KEY_SELECTOR)),
    ],
};

static OBJECT_FIELD_SELECTOR: Message = Message {
    name: "ObjectFieldSelector",
    fields: &[single(1, "apiVersion", Str), single(2, "fieldPath", Str)],
};

static RESOURCE_FIELD_SELECTOR: Message = Message {
    name: "ResourceFieldSelector",
    fields: &[
        single(1, "containerName", Str),
        single(2, "resource", Str),
        single(3, "divisor", Quantity),
    ],
};

/// ConfigMapKeySelector and SecretKeySelector share their fields.
static KEY_SELECTOR: Message = Message {
    name: "KeySelector",
    fields: &[
        single(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        single(2, "key", Str),
        optional(3, "optional", Bool),
    ],
};

static ENV_FROM_SOURCE: Message = Message {
    name: "EnvFromSource",
    fields: &[
        single(1, "prefix", Str),
        optional(2, "configMapRef", Msg(&ENV_SOURCE)),
        optional(3, "secretRef", Msg(&ENV_SOURCE)),
    ],
};

/// ConfigMapEnvSource and SecretEnvSource share their fields.
static ENV_SOURCE: Message = Message {
    name: "EnvSource",
    fields: &[
        single(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        optional(2, "optional", Bool),
    ],
};

static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[
        single(1, "limits", Ty::Map(&Quantity)),
        single(2, "requests", Ty::Map(&Quantity)),
        repeated(3, "claims", Msg(&RESOURCE_CLAIM)),
    ],
};

static RESOURCE_CLAIM: Message = Message {
    name: "ResourceClaim",
    fields: &[single(1, "name", Str), single(2, "request", Str)],
};

static CONTAINER_RESIZE_POLICY: Message = Message {
    name: "ContainerResizePolicy",
    fields: &[
        single(1, "resourceName", Str),
        single(2, "restartPolicy", Str),
    ],
};

static VOLUME_MOUNT: Message = Message {
    name: "VolumeMount",
    fields: &[
        single(1, "name", Str),
        single(2, "readOnly", Bool),
        single(3, "mountPath", Str),
        single(4, "subPath", Str),
        optional(5, "mountPropagation", Str),
        single(6, "subPathExpr", Str),
        optional(7, "recursiveReadOnly", Str),
    ],
};

static PROBE: Message = Message {
    name: "Probe",
    fields: &[
        single(1, "handler", Ty::Inline(&PROBE_HANDLER)),
        single(2, "initialDelaySeconds", Int),
        single(3, "timeoutSeconds", Int),
        single(4, "periodSeconds", Int),
        single(5, "successThreshold", Int),
        single(6, "failureThreshold", Int),
        optional(7, "terminationGracePeriodSeconds", Int),
    ],
};

static PROBE_HANDLER: Message = Message {
    name: "ProbeHandler",
    fields: &[
        optional(1, "exec", Msg(&EXEC_ACTION)),
        optional(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        optional(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        optional(4, "grpc", Msg(&GRPC_ACTION)),
    ],
};

static EXEC_ACTION: Message = Message {
    name: "ExecAction",
    fields: &[repeated(1, "command", Str)],
};

static HTTP_GET_ACTION: Message = Message {
    name: "HTTPGetAction",
    fields: &[
        single(1, "path", Str),
        single(2, "port", IntOrString),
        single(3, "host", Str),
        single(4, "scheme", Str),
        repeated(5, "httpHeaders", Msg(&HTTP_HEADER)),
    ],
};

static HTTP_HEADER: Message = Message {
    name: "HTTPHeader",
    fields: &[single(1, "name", Str), single(2, "value", Str)],
};

static TCP_SOCKET_ACTION: Message = Message {
    name: "TCPSocketAction",
    fields: &[single(1, "port", IntOrString), single(2, "host", Str)],
};

static GRPC_ACTION: Message = Message {
    name: "GRPCAction",
    fields: &[single(1, "port", Int), optional(2, "service", Str)],
};

static SECURITY_CONTEXT: Message = Message {
    name: "SecurityContext",
    fields: &[
        optional(1, "capabilities", Msg(&CAPABILITIES)),
        optional(2, "privileged", Bool),
        optional(4, "runAsUser", Int),
        optional(5, "runAsNonRoot", Bool),
        optional(6, "readOnlyRootFilesystem", Bool),
        optional(7, "allowPrivilegeEscalation", Bool),
        optional(8, "runAsGroup", Int),
        optional(9, "procMount", Str),
        optional(11, "seccompProfile", Msg(&SECCOMP_PROFILE)),
    ],
};

static CAPABILITIES: Message = Message {
    name: "Capabilities",
    fields: &[repeated(1, "add", Str), repeated(2, "drop", Str)],
};

static VOLUME: Message = Message {
    name: "Volume",
    fields: &[
        single(1, "name", Str),
        single(2, "volumeSource", Ty::Inline(&VOLUME_SOURCE)),
    ],
};

/// The volume sources a k3s workload commonly uses; others are refused.
static VOLUME_SOURCE: Message = Message {
    name: "VolumeSource",
    fields: &[
        optional(1, "hostPath", Msg(&HOST_PATH_VOLUME_SOURCE)),
        optional(2, "emptyDir", Msg(&EMPTY_DIR_VOLUME_SOURCE)),
        optional(6, "secret", Msg(&SECRET_VOLUME_SOURCE)),
        optional(10, "persistentVolumeClaim", Msg(&PVC_VOLUME_SOURCE)),
        optional(19, "configMap", Msg(&CONFIG_MAP_VOLUME_SOURCE)),
    ],
};

static HOST_PATH_VOLUME_SOURCE: Message = Message {
    name: "HostPathVolumeSource",
    fields: &[single(1, "path", Str), optional(2, "type", Str)],
};

static EMPTY_DIR_VOLUME_SOURCE: Message = Message {
    name: "EmptyDirVolumeSource",
    fields: &[single(1, "medium", Str), optional(2, "sizeLimit", Quantity)],
};

static SECRET_VOLUME_SOURCE: Message = Message {
    name: "SecretVolumeSource",
    fields: &[
        single(1, "secretName", Str),
        repeated(2, "items", Msg(&KEY_TO_PATH)),
        optional(3, "defaultMode", Int),
        optional(4, "optional", Bool),
    ],
};

static CONFIG_MAP_VOLUME_SOURCE: Message = Message {
    name: "ConfigMapVolumeSource",
    fields: &[
        single(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        repeated(2, "items", Msg(&KEY_TO_PATH)),
        optional(3, "defaultMode", Int),
        optional(4, "optional", Bool),
    ],
};

static KEY_TO_PATH: Message = Message {
    name: "KeyToPath",
    fields: &[
        single(1, "key", Str),
        single(2, "path", Str),
        optional(3, "mode", Int),
    ],
};

static PVC_VOLUME_SOURCE: Message = Message {
    name: "PersistentVolumeClaimVolumeSource",
    fields: &[single(1, "claimName", Str), single(2, "readOnly", Bool)],
};

// k8s.io/api/apps/v1
static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "spec", Msg(&DEPLOYMENT_SPEC)),
        single(3, "status", Msg(&DEPLOYMENT_STATUS)),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        optional(1, "replicas", Int),
        optional(2, "selector", Msg(&LABEL_SELECTOR)),
        single(3, "template", Msg(&POD_TEMPLATE_SPEC)),
        single(4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        single(5, "minReadySeconds", Int),
        optional(6, "revisionHistoryLimit", Int),
        single(7, "paused", Bool),
        optional(9, "progressDeadlineSeconds", Int),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[
        single(1, "type", Str),
        optional(2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[
        optional(1, "maxUnavailable", IntOrString),
        optional(2, "maxSurge", IntOrString),
    ],
};

static DEPLOYMENT_STATUS: Message = Message {
    name: "DeploymentStatus",
    fields: &[
        single(1, "observedGeneration", Int),
        single(2, "replicas", Int),
        single(3, "updatedReplicas", Int),
        single(4, "availableReplicas", Int),
        single(5, "unavailableReplicas", Int),
        repeated(6, "conditions", Msg(&DEPLOYMENT_CONDITION)),
        single(7, "readyReplicas", Int),
        optional(8, "collisionCount", Int),
        optional(9, "terminatingReplicas", Int),
    ],
};

static DEPLOYMENT_CONDITION: Message = Message {
    name: "DeploymentCondition",
    fields: &[
        single(1, "type", Str),
        single(2, "status", Str),
        single(4, "reason", Str),
        single(5, "message", Str),
        single(6, "lastUpdateTime", Time),
        single(7, "lastTransitionTime", Time),
    ],
};

// k8s.io/api/autoscaling/v1
static SCALE: Message = Message {
    name: "Scale",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "spec", Msg(&SCALE_SPEC)),
        single(3, "status", Msg(&SCALE_STATUS)),
    ],
};

static SCALE_SPEC: Message = Message {
    name: "ScaleSpec",
    fields: &[single(1, "replicas", Int)],
};

static SCALE_STATUS: Message = Message {
    name: "ScaleStatus",
    fields: &[single(1, "replicas", Int), single(2, "selector", Str)],
};

// k8s.io/api/authentication/v1
static SELF_SUBJECT_REVIEW: Message = Message {
    name: "SelfSubjectReview",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "status", Msg(&SELF_SUBJECT_REVIEW_STATUS)),
    ],
};

static SELF_SUBJECT_REVIEW_STATUS: Message = Message {
    name: "SelfSubjectReviewStatus",
    fields: &[single(1, "userInfo", Msg(&USER_INFO))],
};

/// UserInfo without `extra` (map of string lists), which no request sets.
static USER_INFO: Message = Message {
    name: "UserInfo",
    fields: &[
        single(1, "username", Str),
        single(2, "uid", Str),
        repeated(3, "groups", Str),
    ],
};

// k8s.io/api/authorization/v1
static SELF_SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SelfSubjectAccessReview",
    fields: &[
        single(1, "metadata", Msg(&OBJECT_META)),
        single(2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
        single(3, "status", Msg(&SUBJECT_ACCESS_REVIEW_STATUS)),
    ],
};

static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        optional(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        optional(2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
};

static RESOURCE_ATTRIBUTES: Message = Message {
    name: "ResourceAttributes",
    fields: &[
        single(1, "namespace", Str),
        single(2, "verb", Str),
        single(3, "group", Str),
        single(4, "version", Str),
        single(5, "resource", Str),
        single(6, "subresource", Str),
        single(7, "name", Str),
        optional(8, "fieldSelector", Msg(&FIELD_SELECTOR_ATTRIBUTES)),
        optional(9, "labelSelector", Msg(&LABEL_SELECTOR_ATTRIBUTES)),
    ],
};

static FIELD_SELECTOR_ATTRIBUTES: Message = Message {
    name: "FieldSelectorAttributes",
    fields: &[
        single(1, "rawSelector", Str),
        repeated(2, "requirements", Msg(&FIELD_SELECTOR_REQUIREMENT)),
    ],
};

static FIELD_SELECTOR_REQUIREMENT: Message = Message {
    name: "FieldSelectorRequirement",
    fields: &[
        single(1, "key", Str),
        single(2, "operator", Str),
        repeated(3, "values", Str),
    ],
};

static LABEL_SELECTOR_ATTRIBUTES: Message = Message {
    name: "LabelSelectorAttributes",
    fields: &[
        single(1, "rawSelector", Str),
        repeated(2, "requirements", Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

static NON_RESOURCE_ATTRIBUTES: Message = Message {
    name: "NonResourceAttributes",
    fields: &[single(1, "path", Str), single(2, "verb", Str)],
};

static SUBJECT_ACCESS_REVIEW_STATUS: Message = Message {
    name: "SubjectAccessReviewStatus",
    fields: &[
        single(1, "allowed", Bool),
        single(2, "reason", Str),
        single(3, "evaluationError", Str),
        single(4, "denied", Bool),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Hand-built protobuf: each helper writes one field with its key.
    fn key(number: u32, wire: u8) -> Vec<u8> {
        varint(u64::from(number) << 3 | u64::from(wire))
    }

    fn varint(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn int(number: u32, n: i64) -> Vec<u8> {
        [key(number, 0), varint(n as u64)].concat()
    }

    fn bytes(number: u32, b: &[u8]) -> Vec<u8> {
        [key(number, 2), varint(b.len() as u64), b.to_vec()].concat()
    }

    fn text(number: u32, s: &str) -> Vec<u8> {
        bytes(number, s.as_bytes())
    }

    fn entry(number: u32, k: &str, v: &[u8]) -> Vec<u8> {
        bytes(number, &[text(1, k), bytes(2, v)].concat())
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [text(1, api_version), text(2, kind)].concat();
        [
            b"k8s\0".to_vec(),
            bytes(1, &type_meta),
            bytes(2, raw),
            text(3, ""),
            text(4, ""),
        ]
        .concat()
    }

    /// ObjectMeta as Go writes it: every value field, zero or not.
    fn meta(name: &str, labels: &[(&str, &str)]) -> Vec<u8> {
        let mut m = [
            text(1, name),
            text(2, ""),
            text(3, ""),
            text(4, ""),
            text(5, ""),
            text(6, ""),
            int(7, 0),
            bytes(8, &[int(1, 0), int(2, 0)].concat()),
        ]
        .concat();
        for (k, v) in labels {
            m.extend(entry(11, k, v.as_bytes()));
        }
        m
    }

    #[test]
    fn namespace_with_labels_and_zero_fields_left_out() {
        let raw = [
            bytes(1, &meta("team-a", &[("env", "prod")])),
            bytes(2, &[]),
            bytes(3, &text(1, "")),
        ]
        .concat();
        let v = decode_object(&envelope("v1", "Namespace", &raw)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team-a", "labels": {"env": "prod"}},
                "spec": {}, "status": {}})
        );
    }

    #[test]
    fn config_map_and_secret_maps() {
        let raw = [
            bytes(1, &meta("cfg", &[])),
            entry(2, "a", b"b"),
            entry(3, "bin", &[0, 1, 2]),
        ]
        .concat();
        let v = decode_object(&envelope("v1", "ConfigMap", &raw)).unwrap();
        assert_eq!(v["data"], json!({"a": "b"}));
        assert_eq!(v["binaryData"], json!({"bin": "AAEC"}));
        assert!(v.get("immutable").is_none());

        let raw = [
            bytes(1, &meta("s", &[])),
            entry(2, "k", b"v"),
            text(3, "Opaque"),
            int(5, 0),
        ]
        .concat();
        let v = decode_object(&envelope("v1", "Secret", &raw)).unwrap();
        assert_eq!(v["data"], json!({"k": "dg=="}));
        assert_eq!(v["type"], "Opaque");
        assert_eq!(v["immutable"], false, "a pointer field keeps false");
    }

    #[test]
    fn deployment_spec_template_and_strategy() {
        let container = [
            text(1, "nginx"),
            text(2, "nginx:1.27"),
            text(3, "sh"),
            text(3, "-c"),
            bytes(6, &[text(1, "http"), int(3, 80), text(4, "TCP")].concat()),
            bytes(7, &[text(1, "MODE"), text(2, "fast")].concat()),
            bytes(8, &entry(2, "cpu", &text(1, "100m"))),
            text(14, "IfNotPresent"),
            text(20, "File"),
        ]
        .concat();
        let pod_spec = [bytes(2, &container), text(3, "Always"), int(4, 30)].concat();
        let template = [bytes(1, &meta("", &[("app", "web")])), bytes(2, &pod_spec)].concat();
        let requirement = [text(1, "tier"), text(2, "In"), text(3, "a"), text(3, "b")].concat();
        let selector = [entry(1, "app", b"web"), bytes(2, &requirement)].concat();
        let rolling = [
            bytes(1, &[int(1, 1), int(2, 0), text(3, "25%")].concat()),
            bytes(2, &[int(1, 0), int(2, 2)].concat()),
        ]
        .concat();
        let strategy = [text(1, "RollingUpdate"), bytes(2, &rolling)].concat();
        let spec = [
            int(1, 0),
            bytes(2, &selector),
            bytes(3, &template),
            bytes(4, &strategy),
            int(5, 0),
        ]
        .concat();
        let raw = [bytes(1, &meta("web", &[("app", "web")])), bytes(2, &spec)].concat();
        let v = decode_object(&envelope("apps/v1", "Deployment", &raw)).unwrap();
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["spec"]["replicas"], 0, "replicas is a pointer: 0 is kept");
        assert!(v["spec"].get("minReadySeconds").is_none());
        assert_eq!(
            v["spec"]["selector"],
            json!({"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]})
        );
        assert_eq!(
            v["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2}})
        );
        let pod = &v["spec"]["template"];
        assert_eq!(pod["metadata"], json!({"labels": {"app": "web"}}));
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx:1.27", "command": ["sh", "-c"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "fast"}],
                "resources": {"requests": {"cpu": "100m"}},
                "imagePullPolicy": "IfNotPresent", "terminationMessagePolicy": "File"}])
        );
    }

    #[test]
    fn scale_and_access_review() {
        let raw = [
            bytes(1, &meta("web", &[])),
            bytes(2, &int(1, 3)),
            bytes(3, &[]),
        ]
        .concat();
        let v = decode_object(&envelope("autoscaling/v1", "Scale", &raw)).unwrap();
        assert_eq!(v["spec"], json!({"replicas": 3}));
        let attributes = [text(1, "default"), text(2, "list"), text(5, "pods")].concat();
        let raw = [bytes(2, &bytes(1, &attributes)), bytes(3, &int(1, 0))].concat();
        let v = decode_object(&envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &raw,
        ))
        .unwrap();
        assert_eq!(
            v["spec"],
            json!({"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}})
        );
        assert_eq!(v["status"], json!({}));
    }

    #[test]
    fn inline_structs_join_their_parent() {
        let volume = [
            text(1, "cfg"),
            bytes(
                2,
                &bytes(19, &[bytes(1, &text(1, "flannel")), int(3, 420)].concat()),
            ),
        ]
        .concat();
        let v = decode_message(&VOLUME, &volume).unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"name": "cfg", "configMap": {"name": "flannel", "defaultMode": 420}})
        );
    }

    #[test]
    fn times_negative_ints_and_packed_ints() {
        let m = [
            bytes(8, &[int(1, 1_769_842_800), int(2, 0)].concat()),
            int(10, -1),
        ]
        .concat();
        let v = decode_message(&OBJECT_META, &m).unwrap();
        assert_eq!(v["creationTimestamp"], "2026-01-31T07:00:00Z");
        assert_eq!(v["deletionGracePeriodSeconds"], -1);
        let packed = bytes(4, &[varint(1000), varint(2000)].concat());
        let v = decode_message(&POD_SECURITY_CONTEXT, &packed).unwrap();
        assert_eq!(v["supplementalGroups"], json!([1000, 2000]));
    }

    #[test]
    fn unknown_fields_and_kinds_are_named() {
        let raw = [bytes(1, &meta("x", &[])), text(99, "?")].concat();
        let err = decode_object(&envelope("v1", "ConfigMap", &raw)).unwrap_err();
        assert_eq!(
            err,
            Error::UnknownField {
                message: "ConfigMap",
                field: 99
            }
        );
        assert!(
            err.to_string()
                .contains("field number 99 of protobuf message ConfigMap")
        );
        // An affinity (PodSpec field 18) is refused, not dropped.
        let err = decode_message(&POD_SPEC, &bytes(18, &[])).unwrap_err();
        assert_eq!(
            err,
            Error::UnknownField {
                message: "PodSpec",
                field: 18
            }
        );
        let err = decode_object(&envelope("v1", "Pod", &[])).unwrap_err();
        assert!(matches!(err, Error::UnknownKind { ref kind, .. } if kind == "Pod"));
        assert!(err.to_string().contains("\"Pod\""));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert_eq!(decode_object(b"{\"kind\":1}"), Err(Error::Magic));
        let truncated = [b"k8s\0".to_vec(), key(2, 2), varint(50), b"ab".to_vec()].concat();
        assert!(matches!(
            decode_object(&truncated),
            Err(Error::Malformed { .. })
        ));
        // A string field sent as a varint.
        let wrong = [bytes(1, &int(1, 5))].concat();
        assert!(matches!(
            decode_object(&envelope("v1", "Namespace", &wrong)),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            decode_message(&TIME, &[0xff; 11]),
            Err(Error::Malformed { .. })
        ));
        let gzip = [
            b"k8s\0".to_vec(),
            bytes(1, &[text(1, "v1"), text(2, "Namespace")].concat()),
            text(3, "gzip"),
        ]
        .concat();
        assert!(matches!(decode_object(&gzip), Err(Error::Envelope(_))));
    }

    #[test]
    fn content_type_detection() {
        assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
        assert!(is_protobuf(
            "application/vnd.kubernetes.protobuf; charset=x"
        ));
        assert!(!is_protobuf("application/json"));
    }
}
