#include "worker/io/pt_reader.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "shared/core/error.h"

namespace ldm::worker {
namespace {
// A named namespace inside the anonymous one: the worker library may be built as a unity build,
// where generic names such as Value would collide with other files' helpers.
namespace pt_pickle {

// ---------------------------------------------------------------------------------------------
// The unpickler's object model. Containers are shared (memo entries alias the objects on the
// stack, and APPEND/SETITEM after BINPUT must be seen through both), hence shared_ptr.

struct Value;
using ValuePtr = std::shared_ptr<Value>;

enum class Kind {
  None,
  Bool,
  Int,
  BigInt,
  Float,
  String,
  Bytes,
  Tuple,
  List,
  Dict,
  Set,
  Global,
  Object,
  Storage,
  Tensor
};

struct Value {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;                // Int; Storage: numel
  double f = 0;                 // Float
  std::string s;                // String, Bytes, BigInt (raw bytes); Global: "module.name"; Storage: key
  std::vector<ValuePtr> items;  // Tuple, List, Set; Object: {callable, args, state...}
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // Dict, insertion order
  // Storage: element type. Tensor: a view not yet materialised (items[0] is its Storage).
  at::ScalarType dtype = at::kFloat;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};

ValuePtr make(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}
ValuePtr make_int(int64_t i) {
  auto v = make(Kind::Int);
  v->i = i;
  return v;
}
ValuePtr make_str(Kind k, std::string s) {
  auto v = make(k);
  v->s = std::move(s);
  return v;
}

std::string describe(const ValuePtr& v) {
  switch (v->kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return v->b ? "True" : "False";
    case Kind::Int:
      return "int " + std::to_string(v->i);
    case Kind::BigInt:
      return "big int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str '" + v->s + "'";
    case Kind::Bytes:
      return "bytes";
    case Kind::Tuple:
      return "tuple of " + std::to_string(v->items.size());
    case Kind::List:
      return "list of " + std::to_string(v->items.size());
    case Kind::Dict:
      return "dict of " + std::to_string(v->dict.size());
    case Kind::Set:
      return "set";
    case Kind::Global:
      return "global " + v->s;
    case Kind::Object:
      return "object made by " + (v->items.empty() ? std::string("?") : describe(v->items[0]));
    case Kind::Storage:
      return "storage " + v->s;
    case Kind::Tensor:
      return "tensor";
  }
  return "?";
}

// The element type of a legacy typed-storage class as torch.save names it (torch.FloatStorage...).
bool storage_dtype(const std::string& global, at::ScalarType* out) {
  static const std::pair<const char*, at::ScalarType> kTypes[] = {
      {"torch.FloatStorage", at::kFloat},
      {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},
      {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},
      {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
      {"torch.ComplexFloatStorage", at::kComplexFloat},
      {"torch.ComplexDoubleStorage", at::kComplexDouble},
      {"torch.UntypedStorage", at::kByte},
  };
  for (const auto& [name, type] : kTypes)
    if (global == name) {
      *out = type;
      return true;
    }
  return false;
}

class Unpickler {
 public:
  Unpickler(const std::string& data, std::string source) : data_(data), source_(std::move(source)) {}

  ValuePtr run() {
    while (true) {
      op_pos_ = pos_;
      const uint8_t op = u8();
      if (op == '.') {  // STOP
        if (stack_.size() != 1 || !marks_.empty()) fail("STOP with a stack of " + std::to_string(stack_.size()));
        return stack_.back();
      }
      if (stack_op(op) || scalar_op(op) || container_op(op) || object_op(op) || memo_op(op)) continue;
      char buf[64];
      std::snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x", unsigned(op));
      std::string msg = buf;
      if (op >= 0x20 && op < 0x7f) msg += std::string(" ('") + char(op) + "')";
      fail(msg);
    }
  }

 private:
  // Protocol, framing, marks and the stack itself. Returns false for an opcode of another group.
  bool stack_op(uint8_t op) {
    switch (op) {
      case 0x80:
        u8();
        break;  // PROTO
      case 0x95:
        read(8);
        break;  // FRAME: length only matters to streaming readers
      case '(':
        marks_.push_back(stack_.size());
        break;  // MARK
      case '0':
        pop();
        break;  // POP
      case '1':
        pop_mark();
        break;  // POP_MARK
      case '2':
        push(top());
        break;  // DUP
      case 'N':
        push(make(Kind::None));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        auto v = make(Kind::Bool);
        v->b = op == 0x88;
        push(v);
        break;
      }
      default:
        return false;
    }
    return true;
  }

  // Numbers, strings and bytes. Returns false for an opcode of another group.
  bool scalar_op(uint8_t op) {
    switch (op) {
      case 'J':
        push(make_int(int32_t(le(4))));
        break;  // BININT
      case 'K':
        push(make_int(int64_t(le(1))));
        break;  // BININT1
      case 'M':
        push(make_int(int64_t(le(2))));
        break;  // BININT2
      case 0x8a:
        push(long_value(le(1)));
        break;  // LONG1
      case 0x8b:
        push(long_value(le(4)));
        break;     // LONG4
      case 'I': {  // INT (text; "01"/"00" are True/False)
        const std::string line = readline();
        if (line == "01" || line == "00") {
          auto v = make(Kind::Bool);
          v->b = line == "01";
          push(v);
        } else {
          push(make_int(parse_int(line)));
        }
        break;
      }
      case 'L': {  // LONG (text, trailing 'L')
        std::string line = readline();
        if (!line.empty() && line.back() == 'L') line.pop_back();
        push(make_int(parse_int(line)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const std::string b = read(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | uint8_t(b[k]);
        auto v = make(Kind::Float);
        std::memcpy(&v->f, &bits, 8);
        push(v);
        break;
      }
      case 'F': {  // FLOAT (text)
        auto v = make(Kind::Float);
        v->f = std::strtod(readline().c_str(), nullptr);
        push(v);
        break;
      }
      case 'X':
        push(make_str(Kind::String, read(le(4))));
        break;  // BINUNICODE
      case 0x8c:
        push(make_str(Kind::String, read(le(1))));
        break;  // SHORT_BINUNICODE
      case 0x8d:
        push(make_str(Kind::String, read(le(8))));
        break;  // BINUNICODE8
      case 'V':
        push(make_str(Kind::String, readline()));
        break;  // UNICODE (raw-unicode-escape; kept raw)
      case 'T':
        push(make_str(Kind::String, read(le(4))));
        break;  // BINSTRING
      case 'U':
        push(make_str(Kind::String, read(le(1))));
        break;  // SHORT_BINSTRING
      case 'S':
        push(make_str(Kind::String, unquote(readline())));
        break;  // STRING
      case 'B':
        push(make_str(Kind::Bytes, read(le(4))));
        break;  // BINBYTES
      case 'C':
        push(make_str(Kind::Bytes, read(le(1))));
        break;  // SHORT_BINBYTES
      case 0x8e:
      case 0x96:
        push(make_str(Kind::Bytes, read(le(8))));
        break;  // BINBYTES8 / BYTEARRAY8
      default:
        return false;
    }
    return true;
  }

  // Tuples, lists, dicts and sets, and what fills them. Returns false for an opcode of another group.
  bool container_op(uint8_t op) {
    switch (op) {
      case ')':
        push(make(Kind::Tuple));
        break;  // EMPTY_TUPLE
      case ']':
        push(make(Kind::List));
        break;  // EMPTY_LIST
      case '}':
        push(make(Kind::Dict));
        break;  // EMPTY_DICT
      case 0x8f:
        push(make(Kind::Set));
        break;  // EMPTY_SET
      case 't':
      case 'l':
      case 0x91: {  // TUPLE / LIST / FROZENSET
        auto v = make(op == 't' ? Kind::Tuple : op == 'l' ? Kind::List : Kind::Set);
        v->items = pop_mark();
        push(v);
        break;
      }
      case 'd': {  // DICT
        auto v = make(Kind::Dict);
        auto kv = pop_mark();
        if (kv.size() % 2) fail("DICT with an odd number of items");
        for (size_t k = 0; k < kv.size(); k += 2) set_item(v, kv[k], kv[k + 1]);
        push(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1 / TUPLE2 / TUPLE3
        const size_t n = op - 0x84;
        if (stack_.size() < n + floor()) fail("stack underflow");
        auto v = make(Kind::Tuple);
        v->items.assign(stack_.end() - n, stack_.end());
        stack_.resize(stack_.size() - n);
        push(v);
        break;
      }
      case 'a': {  // APPEND
        auto item = pop();
        append(top(), {item});
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        append(top(), items);
        break;
      }
      case 0x90: {  // ADDITEMS
        auto items = pop_mark();
        append(top(), items);
        break;
      }
      case 's': {  // SETITEM
        auto value = pop();
        auto key = pop();
        set_item(top(), key, value);
        break;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark();
        if (kv.size() % 2) fail("SETITEMS with an odd number of items");
        auto d = top();
        for (size_t k = 0; k < kv.size(); k += 2) set_item(d, kv[k], kv[k + 1]);
        break;
      }
      default:
        return false;
    }
    return true;
  }

  // Globals, calls (REDUCE, NEWOBJ), BUILD and persistent ids (the tensors). Returns false for an opcode of another
  // group.
  bool object_op(uint8_t op) {
    switch (op) {
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = readline();
        std::string name = readline();
        push(make_str(Kind::Global, module + "." + name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        if (name->kind != Kind::String || module->kind != Kind::String) fail("STACK_GLOBAL of non-strings");
        push(make_str(Kind::Global, module->s + "." + name->s));
        break;
      }
      case 'R': {  // REDUCE
        auto args = pop();
        auto callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ cls args
        auto args = pop();
        auto cls = pop();
        push(reduce(cls, args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX cls args kwargs
        pop();
        auto args = pop();
        auto cls = pop();
        push(reduce(cls, args));
        break;
      }
      case 'b': {  // BUILD: state kept on opaque objects only
        auto state = pop();
        auto obj = top();
        if (obj->kind == Kind::Object) obj->items.push_back(state);
        break;
      }
      case 'Q': {  // BINPERSID
        auto pid = pop();
        push(persistent_load(pid));
        break;
      }
      default:
        return false;
    }
    return true;
  }

  // The memo. Returns false for an opcode of another group.
  bool memo_op(uint8_t op) {
    switch (op) {
      case 'q':
        memo_[le(1)] = top();
        break;  // BINPUT
      case 'r':
        memo_[le(4)] = top();
        break;  // LONG_BINPUT
      case 'p':
        memo_[uint64_t(parse_int(readline()))] = top();
        break;  // PUT
      case 0x94:
        memo_[memo_.size()] = top();
        break;  // MEMOIZE
      case 'h':
        push(memo_get(le(1)));
        break;  // BINGET
      case 'j':
        push(memo_get(le(4)));
        break;  // LONG_BINGET
      case 'g':
        push(memo_get(uint64_t(parse_int(readline()))));
        break;  // GET

      default:
        return false;
    }
    return true;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(source_ + ": " + what + " at byte " + std::to_string(op_pos_) + " of data.pkl");
  }

  uint8_t u8() {
    if (pos_ >= data_.size())
      fail(pos_ == op_pos_ ? "data.pkl is truncated: it ends without STOP"
                           : "data.pkl is truncated: it ends inside the opcode");
    return uint8_t(data_[pos_++]);
  }
  std::string read(uint64_t n) {
    if (n > data_.size() - pos_) fail("data.pkl is truncated: it ends inside the opcode");
    std::string out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t le(int n) {  // unsigned little-endian integer of n bytes
    const std::string b = read(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | uint8_t(b[k]);
    return v;
  }
  std::string readline() {
    const auto end = data_.find('\n', pos_);
    if (end == std::string::npos) fail("data.pkl is truncated: it ends inside the opcode");
    std::string out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  int64_t parse_int(const std::string& s) {
    try {
      size_t used = 0;
      const long long v = std::stoll(s, &used);
      if (used != s.size()) fail("bad integer '" + s + "'");
      return v;
    } catch (const std::logic_error&) {
      fail("bad integer '" + s + "'");
    }
  }
  static std::string unquote(std::string s) {
    if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front())
      s = s.substr(1, s.size() - 2);
    return s;
  }
  // Two's-complement little-endian integer of `n` bytes (LONG1 / LONG4).
  ValuePtr long_value(uint64_t n) {
    const std::string b = read(n);
    if (n > 8) return make_str(Kind::BigInt, b);
    if (n == 0) return make_int(0);
    uint64_t v = 0;
    for (int k = int(n) - 1; k >= 0; --k) v = (v << 8) | uint8_t(b[k]);
    if (n < 8 && (uint8_t(b[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return make_int(int64_t(v));
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  ValuePtr pop() {
    auto v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return out;
  }
  ValuePtr memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("memo key " + std::to_string(k) + " was never stored");
    return it->second;
  }
  void append(const ValuePtr& target, const std::vector<ValuePtr>& items) {
    if (target->kind == Kind::List || target->kind == Kind::Set || target->kind == Kind::Object)
      target->items.insert(target->items.end(), items.begin(), items.end());
    else fail("APPEND to " + describe(target));
  }
  void set_item(const ValuePtr& d, const ValuePtr& key, const ValuePtr& value) {
    if (d->kind == Kind::Object) return;  // e.g. a dict subclass we model as opaque
    if (d->kind != Kind::Dict) fail("SETITEM on " + describe(d));
    if (key->kind == Kind::String || key->kind == Kind::Int)
      for (auto& kv : d->dict)
        if (kv.first->kind == key->kind && kv.first->s == key->s && kv.first->i == key->i) {
          kv.second = value;
          return;
        }
    d->dict.emplace_back(key, value);
  }

  ValuePtr persistent_load(const ValuePtr& pid) {
    // torch.save's ('storage', storage_type, key, location, numel)
    if (pid->kind != Kind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::String ||
        pid->items[0]->s != "storage")
      fail("unsupported persistent id (" + describe(pid) + ")");
    const auto& type = pid->items[1];
    const auto& key = pid->items[2];
    const auto& numel = pid->items[4];
    auto v = make(Kind::Storage);
    if (type->kind != Kind::Global || !storage_dtype(type->s, &v->dtype))
      fail("unsupported storage type (" + describe(type) + ")");
    if (key->kind != Kind::String) fail("storage key is " + describe(key));
    if (numel->kind != Kind::Int || numel->i < 0) fail("storage size is " + describe(numel));
    v->s = key->s;
    v->i = numel->i;
    return v;
  }

  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what) {
    if (v->kind != Kind::Tuple && v->kind != Kind::List) fail(std::string("tensor ") + what + " is " + describe(v));
    std::vector<int64_t> out;
    for (const auto& e : v->items) {
      if (e->kind != Kind::Int) fail(std::string("tensor ") + what + " holds " + describe(e));
      out.push_back(e->i);
    }
    return out;
  }

  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) {
    const std::string name = callable->kind == Kind::Global ? callable->s : "";
    const auto& a = args->items;
    if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict") {
      auto d = make(Kind::Dict);
      if (args->kind == Kind::Tuple && !a.empty() && (a[0]->kind == Kind::List || a[0]->kind == Kind::Tuple))
        for (const auto& pair : a[0]->items)
          if (pair->kind == Kind::Tuple && pair->items.size() == 2) set_item(d, pair->items[0], pair->items[1]);
      return d;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride, [requires_grad, backward_hooks, metadata])
      if (args->kind != Kind::Tuple || a.size() < 4) fail(name + " with " + describe(args));
      if (a[0]->kind != Kind::Storage) fail(name + " of " + describe(a[0]));
      if (a[1]->kind != Kind::Int) fail(name + " with storage offset " + describe(a[1]));
      auto t = make(Kind::Tensor);
      t->items = {a[0]};
      t->dtype = a[0]->dtype;
      t->offset = a[1]->i;
      t->sizes = int_tuple(a[2], "size");
      t->strides = int_tuple(a[3], "stride");
      if (t->sizes.size() != t->strides.size()) fail(name + " with sizes and strides of different ranks");
      return t;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (args->kind != Kind::Tuple || a.empty() || a[0]->kind != Kind::Tensor) fail(name + " with " + describe(args));
      return a[0];
    }
    if (name == "torch._tensor._rebuild_from_type_v2" || name == "torch._tensor._rebuild_from_type") {
      // (func, new_type, args, state): a Tensor subclass; keep the plain tensor func builds.
      if (args->kind == Kind::Tuple && a.size() >= 3) return reduce(a[0], a[2]);
    }
    auto obj = make(Kind::Object);  // anything else: opaque, kept for error messages
    obj->items = {callable, args};
    return obj;
  }

  const std::string& data_;
  std::string source_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

// True when `v` is a dict from string keys to tensors: what we call a state dict.
bool is_state_dict(const ValuePtr& v) {
  if (v->kind != Kind::Dict) return false;
  for (const auto& [k, x] : v->dict)
    if (k->kind != Kind::String || x->kind != Kind::Tensor) return false;
  return true;
}

const ValuePtr* dict_get(const ValuePtr& d, const std::string& key) {
  for (const auto& kv : d->dict)
    if (kv.first->kind == Kind::String && kv.first->s == key) return &kv.second;
  return nullptr;
}

std::string dict_keys(const ValuePtr& d) {
  std::string out;
  for (const auto& kv : d->dict) {
    if (!out.empty()) out += ", ";
    out += kv.first->kind == Kind::String ? "'" + kv.first->s + "'" : describe(kv.first);
  }
  return "{" + out + "}";
}

// Why `v` is not a state dict, for the error message.
std::string not_state_dict_reason(const ValuePtr& v) {
  if (v->kind != Kind::Dict) return "it is a " + describe(v);
  for (const auto& [k, x] : v->dict) {
    if (k->kind != Kind::String) return "it has a key that is a " + describe(k);
    if (x->kind != Kind::Tensor) return "entry '" + k->s + "' is a " + describe(x) + ", not a tensor";
  }
  return "";
}

// The archive of a torch.save file (probed first, so the common wrong files get a clear reason).
std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_archive(const std::string& path,
                                                                     const std::string& source) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw DataError(source + ": cannot open the file");
    char head[4] = {0, 0, 0, 0};
    probe.read(head, 4);
    if (probe.gcount() == 4 && !(head[0] == 'P' && head[1] == 'K')) {
      if (uint8_t(head[0]) == 0x80 && uint8_t(head[2]) == 0x8a)
        throw DataError(source +
                        ": legacy (pre-1.6) torch.save format, not a zip archive; re-save it with "
                        "torch.save(obj, f, _use_new_zipfile_serialization=True)");
      throw DataError(source + ": not a zip archive, so not written by torch.save");
    }
  }

  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    throw DataError(source + ": not a readable zip archive (" + e.what_without_backtrace() + ")");
  } catch (const std::exception& e) {
    throw DataError(source + ": not a readable zip archive (" + e.what() + ")");
  }

  return reader;
}

// A record's bytes; a failed read names the file and the record.
std::pair<at::DataPtr, size_t> read_record(caffe2::serialize::PyTorchStreamReader& reader, const std::string& name,
                                           const std::string& source) {
  try {
    auto [ptr, size] = reader.getRecord(name);
    return std::make_pair(std::move(ptr), size);
  } catch (const c10::Error& e) {
    throw DataError(source + ": cannot read record " + name + " (" + e.what_without_backtrace() + ")");
  }
}

// The state dict to load: `key`'s value, the top-level object, or the first of the usual training
// checkpoint keys that holds one. `where` says which, for messages.
ValuePtr choose_state_dict(const ValuePtr& top, const std::string& key, const std::string& source, std::string& where) {
  ValuePtr chosen;
  where = "the top-level object";
  if (!key.empty()) {
    if (top->kind != Kind::Dict)
      throw DataError(source + ": key '" + key + "' asked for, but the top-level object is a " + describe(top));
    const ValuePtr* v = dict_get(top, key);
    if (!v) throw DataError(source + ": no key '" + key + "' at the top level; keys are " + dict_keys(top));
    where = "'" + key + "'";
    if (!is_state_dict(*v))
      throw DataError(source + ": " + where + " is not a state dict: " + not_state_dict_reason(*v));
    chosen = *v;
  } else if (is_state_dict(top)) {
    chosen = top;
  } else {
    if (top->kind == Kind::Dict)
      for (const char* k : {"ema", "model", "state_dict", "module"})
        if (const ValuePtr* v = dict_get(top, k); v && is_state_dict(*v)) {
          chosen = *v;
          where = std::string("'") + k + "'";
          break;
        }
    if (!chosen)
      throw DataError(source + ": no state dict found: " + not_state_dict_reason(top) +
                      (top->kind == Kind::Dict ? "; top-level keys are " + dict_keys(top) +
                                                     " and none of 'ema', 'model', 'state_dict', 'module' is a "
                                                     "dict of tensors"
                                               : ""));
  }

  return chosen;
}

// Each storage record is read once and copied into memory we own, then every view is copied out of
// it as a contiguous tensor.
std::map<std::string, at::Tensor> materialise(caffe2::serialize::PyTorchStreamReader& reader, const ValuePtr& chosen,
                                              const std::string& source, const std::string& where) {
  std::map<std::string, at::Tensor> storages;  // key -> 1-D owned tensor
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : chosen->dict) {
    const std::string& name = k->s;
    const ValuePtr& st = v->items[0];
    const std::string rec = "data/" + st->s;
    auto it = storages.find(st->s);
    if (it == storages.end()) {
      if (!reader.hasRecord(rec))
        throw DataError(source + ": missing storage " + rec + " (needed by tensor '" + name + "' of " + where + ")");
      auto [ptr, size] = read_record(reader, rec, source);
      // The pickle's element count is checked against the record before anything is allocated.
      size_t want = 0;
      const bool overflow = __builtin_mul_overflow(size_t(st->i), c10::elementSize(st->dtype), &want);
      if (overflow || size < want)
        throw DataError(source + ": storage " + rec + " holds " + std::to_string(size) + " bytes, " +
                        (overflow ? std::string("more than 2^64") : std::to_string(want)) + " expected for " +
                        std::to_string(st->i) + " elements of " + c10::toString(st->dtype));
      auto buffer = at::empty({st->i}, at::TensorOptions().dtype(st->dtype));
      if (want) std::memcpy(buffer.data_ptr(), ptr.get(), want);
      it = storages.emplace(st->s, buffer).first;
    }
    const at::Tensor& buffer = it->second;
    if (buffer.scalar_type() != v->dtype)
      throw DataError(source + ": storage " + rec + " is read as two dtypes (tensor '" + name + "')");
    // Bounds of the view: the furthest element it touches must lie inside the storage (every
    // product and sum checked: a pickle can declare any sizes and strides).
    int64_t numel = 1, last = v->offset;
    bool bad = v->offset < 0;
    for (size_t d = 0; d < v->sizes.size() && !bad; ++d) {
      int64_t reach = 0;
      bad = v->sizes[d] < 0 || v->strides[d] < 0 || __builtin_mul_overflow(numel, v->sizes[d], &numel) ||
            (v->sizes[d] > 0 && (__builtin_mul_overflow(v->sizes[d] - 1, v->strides[d], &reach) ||
                                 __builtin_add_overflow(last, reach, &last)));
    }
    if (bad || (numel > 0 && last >= st->i))
      throw DataError(source + ": tensor '" + name + "' of " + where + " reaches outside its storage " + rec);
    // A view with more elements than its storage repeats elements (an expand()ed tensor, stride 0):
    // never a parameter, and its contiguous copy could be any size.
    if (numel > st->i)
      throw DataError(source + ": tensor '" + name + "' of " + where + " has " + std::to_string(numel) +
                      " elements over a storage of " + std::to_string(st->i) +
                      " (an expanded view); save it contiguous (.contiguous()) instead");
    out[name] = numel == 0 ? at::empty(v->sizes, buffer.options())
                           : buffer.as_strided(v->sizes, v->strides, v->offset).clone(at::MemoryFormat::Contiguous);
  }
  return out;
}

}  // namespace pt_pickle
}  // namespace

std::map<std::string, at::Tensor> load_pt_state_dict(const std::string& path, const std::string& key) {
  using namespace pt_pickle;
  const std::string source = "PyTorch file " + path;
  const auto reader = open_archive(path, source);
  if (!reader->hasRecord("data.pkl")) throw DataError(source + ": no data.pkl in the archive");
  if (reader->hasRecord("byteorder")) {
    auto [ptr, size] = read_record(*reader, "byteorder", source);
    const std::string order(static_cast<const char*>(ptr.get()), size);
    if (order != "little") throw DataError(source + ": byte order '" + order + "' is not supported");
  }
  std::string pickle;
  {
    auto [ptr, size] = read_record(*reader, "data.pkl", source);
    pickle.assign(static_cast<const char*>(ptr.get()), size);
  }
  const ValuePtr top = Unpickler(pickle, source).run();
  std::string where;
  const ValuePtr chosen = choose_state_dict(top, key, source, where);
  return materialise(*reader, chosen, source, where);
}

}  // namespace ldm::worker
