// The expression language of configured pipelines: a lexer, a Pratt parser
// that builds a tree of nodes with the types known at load time, and the
// nodes' evaluation. Parsing happens once per expression; evaluating walks
// the tree, and field paths hand out references into the record instead of
// copies.
#include "rill/pipeline/expression.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <utility>

#include "suggest.h"

namespace rill::pipeline {

std::string_view to_string(ValueType type) {
  switch (type) {
    case ValueType::kAny:
      return "any value";
    case ValueType::kNull:
      return "null";
    case ValueType::kBool:
      return "a boolean";
    case ValueType::kNumber:
      return "a number";
    case ValueType::kString:
      return "a string";
    case ValueType::kArray:
      return "an array";
    case ValueType::kObject:
      return "an object";
  }
  return "?";
}

std::string_view to_string(AggregateFunction function) {
  switch (function) {
    case AggregateFunction::kCount:
      return "count";
    case AggregateFunction::kSum:
      return "sum";
    case AggregateFunction::kMin:
      return "min";
    case AggregateFunction::kMax:
      return "max";
    case AggregateFunction::kAvg:
      return "avg";
    case AggregateFunction::kFirst:
      return "first";
    case AggregateFunction::kLast:
      return "last";
    case AggregateFunction::kCountDistinct:
      return "count_distinct";
  }
  return "?";
}

namespace {

std::string_view type_of(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "binary data";
  }
}

bool fits(ValueType actual, ValueType expected) {
  return actual == ValueType::kAny || expected == ValueType::kAny || actual == expected ||
         actual == ValueType::kNull;
}

const Json& null_json() {
  static const Json kNull;
  return kNull;
}

}  // namespace

std::optional<int64_t> integer_value(const Json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (!value.is_number_float()) return std::nullopt;
  const double d = value.get<double>();
  // Also false for NaN.
  if (!(d >= -0x1p63 && d < 0x1p63)) return std::nullopt;
  return static_cast<int64_t>(d);
}

std::optional<int64_t> exact_integer(const Json& value) {
  if (!value.is_number_integer()) return std::nullopt;
  return integer_value(value);
}

namespace detail {

class Node {
 public:
  // `depth`: the levels of the tree from this node down, 1 for a leaf.
  explicit Node(ValueType type, std::size_t depth = 1) : type_(type), depth_(depth) {}
  virtual ~Node() = default;
  // The result, either a reference into the record or `scratch`, which the
  // node may overwrite.
  virtual const Json& eval(const EvalContext& context, Json& scratch) const = 0;
  ValueType type() const { return type_; }
  std::size_t depth() const { return depth_; }

 private:
  ValueType type_;
  std::size_t depth_;
};

}  // namespace detail

namespace {

using detail::Node;
using NodePtr = std::shared_ptr<const Node>;

// The depth of a node above `children`.
std::size_t above(std::initializer_list<const NodePtr*> children) {
  std::size_t deepest = 0;
  for (const NodePtr* child : children) deepest = std::max(deepest, (*child)->depth());
  return deepest + 1;
}
std::size_t above(const std::vector<NodePtr>& children) {
  std::size_t deepest = 0;
  for (const NodePtr& child : children) deepest = std::max(deepest, child->depth());
  return deepest + 1;
}

class Literal final : public Node {
 public:
  Literal(Json value, ValueType type) : Node(type), value_(std::move(value)) {}
  const Json& eval(const EvalContext&, Json&) const override { return value_; }

 private:
  Json value_;
};

enum class Root { kKey, kValue, kTimestamp, kHeaders, kLeft, kRight };

// key, value, timestamp, headers, or in a join's value left and right, then
// `.name` steps.
class Path final : public Node {
 public:
  Path(Root root, std::vector<std::string> fields, std::string text)
      : Node(root == Root::kTimestamp && fields.empty()     ? ValueType::kNumber
             : root == Root::kHeaders && fields.size() == 1 ? ValueType::kString
                                                            : ValueType::kAny),
        root_(root),
        fields_(std::move(fields)),
        text_(std::move(text)) {}

  const Json& eval(const EvalContext& context, Json& scratch) const override {
    const Json* current = nullptr;
    switch (root_) {
      case Root::kKey:
        current = &context.key;
        break;
      case Root::kValue:
      case Root::kLeft:
        current = &context.value;
        break;
      case Root::kRight:
        if (context.right == nullptr) return null_json();
        current = context.right;
        break;
      case Root::kTimestamp:
        scratch = context.timestamp;
        return scratch;
      case Root::kHeaders:
        return headers(context, scratch);
    }
    for (const std::string& field : fields_) {
      if (current->is_null()) return null_json();
      if (!current->is_object())
        throw EvalError("'" + text_ + "': cannot read field '" + field + "' of " +
                        std::string(type_of(*current)) + ", expected an object");
      auto it = current->find(field);
      if (it == current->end()) return null_json();
      current = &*it;
    }
    return *current;
  }

 private:
  const Json& headers(const EvalContext& context, Json& scratch) const {
    if (context.headers == nullptr) return null_json();
    if (fields_.empty()) {
      scratch = Json::object();
      for (const Header& header : *context.headers)
        scratch[header.key] = header.value ? Json(*header.value) : Json();
      return scratch;
    }
    const Header* header = context.headers->last(fields_[0]);
    if (header == nullptr || !header->value) return null_json();
    scratch = *header->value;
    return scratch;
  }

  Root root_;
  std::vector<std::string> fields_;
  std::string text_;
};

// base[index]: an array element or an object field.
class Index final : public Node {
 public:
  Index(NodePtr base, NodePtr index)
      : Node(ValueType::kAny, above({&base, &index})),
        base_(std::move(base)),
        index_(std::move(index)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    Json base_tmp, index_tmp;
    const Json& base = base_->eval(context, base_tmp);
    const Json& index = index_->eval(context, index_tmp);
    if (base.is_null() || index.is_null()) return null_json();
    if (base.is_array() && index.is_number_integer()) {
      const std::optional<int64_t> at = integer_value(index);
      if (!at) return null_json();  // beyond any array
      int64_t i = *at;
      if (i < 0) i += static_cast<int64_t>(base.size());
      if (i < 0 || i >= static_cast<int64_t>(base.size())) return null_json();
      return copy_if_scratch(base, base_tmp, base[static_cast<std::size_t>(i)], scratch);
    }
    if (base.is_object() && index.is_string()) {
      auto it = base.find(index.get_ref<const std::string&>());
      if (it == base.end()) return null_json();
      return copy_if_scratch(base, base_tmp, *it, scratch);
    }
    throw EvalError("cannot index " + std::string(type_of(base)) + " with " +
                    std::string(type_of(index)));
  }

 private:
  // An element of a temporary must be copied out before the temporary dies.
  static const Json& copy_if_scratch(const Json& base, const Json& base_tmp, const Json& element,
                                     Json& scratch) {
    if (&base != &base_tmp) return element;
    scratch = element;
    return scratch;
  }
  NodePtr base_;
  NodePtr index_;
};

bool is_number(const Json& v) {
  return v.is_number();
}

// Integer arithmetic that reports overflow instead of wrapping.
template <class Op>
int64_t checked(Op op, int64_t x, int64_t y, char symbol) {
  int64_t result = 0;
  if (op(x, y, &result))
    throw EvalError("integer overflow: " + std::to_string(x) + " " + symbol + " " +
                    std::to_string(y) + " does not fit in 64 bits");
  return result;
}
constexpr auto kAdd = [](int64_t x, int64_t y, int64_t* r) {
  return __builtin_add_overflow(x, y, r);
};
constexpr auto kSub = [](int64_t x, int64_t y, int64_t* r) {
  return __builtin_sub_overflow(x, y, r);
};
constexpr auto kMul = [](int64_t x, int64_t y, int64_t* r) {
  return __builtin_mul_overflow(x, y, r);
};

// Null in, null out: arithmetic and comparisons on a missing field give null.
class Arithmetic final : public Node {
 public:
  Arithmetic(char op, NodePtr left, NodePtr right, ValueType type)
      : Node(type, above({&left, &right})),
        op_(op),
        left_(std::move(left)),
        right_(std::move(right)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    Json left_tmp, right_tmp;
    const Json& a = left_->eval(context, left_tmp);
    const Json& b = right_->eval(context, right_tmp);
    if (a.is_null() || b.is_null()) return null_json();
    if (op_ == '+' && a.is_string() && b.is_string()) {
      scratch = a.get_ref<const std::string&>() + b.get_ref<const std::string&>();
      return scratch;
    }
    if (!is_number(a) || !is_number(b))
      throw EvalError(std::string("operator '") + op_ + "' expects numbers, found " +
                      std::string(type_of(a)) + " and " + std::string(type_of(b)));
    const std::optional<int64_t> ix = op_ == '/' ? std::nullopt : exact_integer(a);
    const std::optional<int64_t> iy = ix ? exact_integer(b) : std::nullopt;
    if (ix && iy) {
      const int64_t x = *ix;
      const int64_t y = *iy;
      switch (op_) {
        case '+':
          scratch = checked(kAdd, x, y, '+');
          return scratch;
        case '-':
          scratch = checked(kSub, x, y, '-');
          return scratch;
        case '*':
          scratch = checked(kMul, x, y, '*');
          return scratch;
        default:
          if (y == 0) throw EvalError("modulo by zero");
          // x % -1 is 0, but the machine computes INT64_MIN % -1 through a
          // quotient that overflows, and traps.
          scratch = y == -1 ? int64_t{0} : x % y;
          return scratch;
      }
    }
    const double x = a.get<double>();
    const double y = b.get<double>();
    switch (op_) {
      case '+':
        scratch = x + y;
        break;
      case '-':
        scratch = x - y;
        break;
      case '*':
        scratch = x * y;
        break;
      case '/':
        if (y == 0) throw EvalError("division by zero");
        scratch = x / y;
        break;
      default:
        if (y == 0) throw EvalError("modulo by zero");
        scratch = std::fmod(x, y);
        break;
    }
    return scratch;
  }

 private:
  char op_;
  NodePtr left_;
  NodePtr right_;
};

enum class Compare { kEq, kNe, kLt, kLe, kGt, kGe };

class Comparison final : public Node {
 public:
  Comparison(Compare op, std::string text, NodePtr left, NodePtr right)
      : Node(ValueType::kBool, above({&left, &right})),
        op_(op),
        text_(std::move(text)),
        left_(std::move(left)),
        right_(std::move(right)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    Json left_tmp, right_tmp;
    const Json& a = left_->eval(context, left_tmp);
    const Json& b = right_->eval(context, right_tmp);
    if (op_ == Compare::kEq || op_ == Compare::kNe) {
      scratch = (a == b) == (op_ == Compare::kEq);
      return scratch;
    }
    if (a.is_null() || b.is_null()) return null_json();
    const bool comparable = (is_number(a) && is_number(b)) || (a.is_string() && b.is_string());
    if (!comparable)
      throw EvalError("operator '" + text_ + "' cannot compare " + std::string(type_of(a)) +
                      " with " + std::string(type_of(b)));
    bool result = false;
    switch (op_) {
      case Compare::kLt:
        result = a < b;
        break;
      case Compare::kLe:
        result = a <= b;
        break;
      case Compare::kGt:
        result = a > b;
        break;
      default:
        result = a >= b;
        break;
    }
    scratch = result;
    return scratch;
  }

 private:
  Compare op_;
  std::string text_;
  NodePtr left_;
  NodePtr right_;
};

// A condition's truth: null counts as false; anything but a boolean is an error.
bool truth(const Json& v, std::string_view what) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_null()) return false;
  throw EvalError(std::string(what) + " expects a boolean, found " + std::string(type_of(v)));
}

class Logical final : public Node {
 public:
  Logical(bool is_and, NodePtr left, NodePtr right)
      : Node(ValueType::kBool, above({&left, &right})),
        and_(is_and),
        left_(std::move(left)),
        right_(std::move(right)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    const char* what = and_ ? "'and'" : "'or'";
    Json tmp;
    const bool a = truth(left_->eval(context, tmp), what);
    if (a != and_) {
      scratch = a;
      return scratch;
    }
    scratch = truth(right_->eval(context, tmp), what);
    return scratch;
  }

 private:
  bool and_;
  NodePtr left_;
  NodePtr right_;
};

class Not final : public Node {
 public:
  explicit Not(NodePtr child) : Node(ValueType::kBool, above({&child})), child_(std::move(child)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    Json tmp;
    scratch = !truth(child_->eval(context, tmp), "'not'");
    return scratch;
  }

 private:
  NodePtr child_;
};

class Negate final : public Node {
 public:
  explicit Negate(NodePtr child)
      : Node(ValueType::kNumber, above({&child})), child_(std::move(child)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    Json tmp;
    const Json& v = child_->eval(context, tmp);
    if (v.is_null()) return null_json();
    if (const std::optional<int64_t> x = exact_integer(v)) {
      if (*x == std::numeric_limits<int64_t>::min())
        throw EvalError("integer overflow: -(" + std::to_string(*x) + ") does not fit in 64 bits");
      scratch = -*x;
    } else if (v.is_number()) {
      scratch = -v.get<double>();
    } else {
      throw EvalError("unary '-' expects a number, found " + std::string(type_of(v)));
    }
    return scratch;
  }

 private:
  NodePtr child_;
};

// a ?? b: a unless it is null.
class Coalesce final : public Node {
 public:
  explicit Coalesce(std::vector<NodePtr> options, ValueType type)
      : Node(type, above(options)), options_(std::move(options)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    for (const NodePtr& option : options_) {
      const Json& v = option->eval(context, scratch);
      if (!v.is_null()) return v;
    }
    return null_json();
  }

 private:
  std::vector<NodePtr> options_;
};

class If final : public Node {
 public:
  If(NodePtr condition, NodePtr then, NodePtr otherwise, ValueType type)
      : Node(type, above({&condition, &then, &otherwise})),
        condition_(std::move(condition)),
        then_(std::move(then)),
        otherwise_(std::move(otherwise)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    Json tmp;
    const bool c = truth(condition_->eval(context, tmp), "if()");
    return (c ? then_ : otherwise_)->eval(context, scratch);
  }

 private:
  NodePtr condition_;
  NodePtr then_;
  NodePtr otherwise_;
};

// ---------------------------------------------------------------------------
// Functions with eagerly evaluated arguments.

constexpr std::size_t kMaxArgs = 8;
using Args = std::array<const Json*, kMaxArgs>;
using FunctionImpl = void (*)(const Args& args, std::size_t count, Json& out);

struct Function {
  std::string_view name;
  std::size_t min_args;
  std::size_t max_args;
  std::vector<ValueType> arg_types;  // the last one repeats
  ValueType result;
  // Most functions give null when their first argument is null.
  bool null_in_null_out;
  FunctionImpl impl;
  std::string_view signature;
  std::string_view description;
};

const std::string& str(const Json& v, std::string_view function) {
  if (!v.is_string())
    throw EvalError(std::string(function) + "() expects a string, found " +
                    std::string(type_of(v)));
  return v.get_ref<const std::string&>();
}
double num(const Json& v, std::string_view function) {
  if (!v.is_number())
    throw EvalError(std::string(function) + "() expects a number, found " +
                    std::string(type_of(v)));
  return v.get<double>();
}
int64_t integer(const Json& v, std::string_view function) {
  if (!v.is_number())
    throw EvalError(std::string(function) + "() expects a number, found " +
                    std::string(type_of(v)));
  const std::optional<int64_t> x = integer_value(v);
  if (!x)
    throw EvalError(std::string(function) + "() expects a number within 64-bit integers, found " +
                    v.dump());
  return *x;
}
std::string text_of(const Json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Doubles that hold a whole number come back as integers, so that
// round(2.0) + 1 is 3, not 3.0.
Json number_result(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
    return static_cast<int64_t>(d);
  return d;
}

std::string lowered(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string uppered(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

const std::vector<Function>& functions() {
  using T = ValueType;
  static const std::vector<Function> kFunctions = {
      {.name = "lower",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kString},
       .result = T::kString,
       .null_in_null_out = true,
       .impl = [](const Args& a, std::size_t, Json& out) { out = lowered(str(*a[0], "lower")); },
       .signature = "lower(s)",
       .description = "s in lower case (ASCII)."},
      {.name = "upper",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kString},
       .result = T::kString,
       .null_in_null_out = true,
       .impl = [](const Args& a, std::size_t, Json& out) { out = uppered(str(*a[0], "upper")); },
       .signature = "upper(s)",
       .description = "s in upper case (ASCII)."},
      {.name = "trim",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kString},
       .result = T::kString,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             const std::string& s = str(*a[0], "trim");
             const auto first = s.find_first_not_of(" \t\r\n");
             out = first == std::string::npos
                       ? std::string()
                       : s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
           },
       .signature = "trim(s)",
       .description = "s without leading and trailing white space."},
      {.name = "length",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kAny},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             const Json& v = *a[0];
             if (v.is_string())
               out = static_cast<int64_t>(v.get_ref<const std::string&>().size());
             else if (v.is_array() || v.is_object())
               out = static_cast<int64_t>(v.size());
             else
               throw EvalError("length() expects a string, an array or an object, found " +
                               std::string(type_of(v)));
           },
       .signature = "length(x)",
       .description = "Bytes of a string, elements of an array, fields of an object."},
      {.name = "substr",
       .min_args = 2,
       .max_args = 3,
       .arg_types = {T::kString, T::kNumber, T::kNumber},
       .result = T::kString,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t n, Json& out) {
             const std::string& s = str(*a[0], "substr");
             const int64_t size = static_cast<int64_t>(s.size());
             const int64_t start = std::clamp<int64_t>(integer(*a[1], "substr"), 0, size);
             const int64_t length =
                 n == 3 ? std::clamp<int64_t>(integer(*a[2], "substr"), 0, size - start)
                        : size - start;
             out = s.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(length));
           },
       .signature = "substr(s, start[, length])",
       .description = "The part of s from byte `start` (0-based)."},
      {.name = "concat",
       .min_args = 1,
       .max_args = kMaxArgs,
       .arg_types = {T::kAny},
       .result = T::kString,
       .null_in_null_out = false,
       .impl =
           [](const Args& a, std::size_t n, Json& out) {
             std::string s;
             for (std::size_t i = 0; i < n; ++i)
               if (!a[i]->is_null()) s += text_of(*a[i]);
             out = std::move(s);
           },
       .signature = "concat(x, ...)",
       .description = "The arguments as text, joined; nulls are skipped."},
      {.name = "contains",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kAny, T::kAny},
       .result = T::kBool,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             if (a[0]->is_array()) {
               out = std::find(a[0]->begin(), a[0]->end(), *a[1]) != a[0]->end();
             } else {
               out = str(*a[0], "contains").find(str(*a[1], "contains")) != std::string::npos;
             }
           },
       .signature = "contains(s, part)",
       .description = "Whether string s contains part, or array s contains the value part."},
      {.name = "starts_with",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kString, T::kString},
       .result = T::kBool,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             out = str(*a[0], "starts_with").starts_with(str(*a[1], "starts_with"));
           },
       .signature = "starts_with(s, prefix)",
       .description = "Whether s starts with prefix."},
      {.name = "ends_with",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kString, T::kString},
       .result = T::kBool,
       .null_in_null_out = true,
       .impl = [](const Args& a, std::size_t,
                  Json& out) { out = str(*a[0], "ends_with").ends_with(str(*a[1], "ends_with")); },
       .signature = "ends_with(s, suffix)",
       .description = "Whether s ends with suffix."},
      {.name = "replace",
       .min_args = 3,
       .max_args = 3,
       .arg_types = {T::kString, T::kString, T::kString},
       .result = T::kString,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             std::string s = str(*a[0], "replace");
             const std::string& from = str(*a[1], "replace");
             const std::string& to = str(*a[2], "replace");
             if (!from.empty())
               for (std::size_t at = s.find(from); at != std::string::npos;
                    at = s.find(from, at + to.size()))
                 s.replace(at, from.size(), to);
             out = std::move(s);
           },
       .signature = "replace(s, from, to)",
       .description = "s with every `from` replaced by `to`."},
      {.name = "split",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kString, T::kString},
       .result = T::kArray,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             const std::string& s = str(*a[0], "split");
             const std::string& separator = str(*a[1], "split");
             out = Json::array();
             if (separator.empty()) throw EvalError("split() expects a non-empty separator");
             std::size_t start = 0;
             for (std::size_t at = s.find(separator); at != std::string::npos;
                  at = s.find(separator, start)) {
               out.push_back(s.substr(start, at - start));
               start = at + separator.size();
             }
             out.push_back(s.substr(start));
           },
       .signature = "split(s, separator)",
       .description = "The parts of s between separators, as an array."},
      {.name = "to_string",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kAny},
       .result = T::kString,
       .null_in_null_out = true,
       .impl = [](const Args& a, std::size_t, Json& out) { out = text_of(*a[0]); },
       .signature = "to_string(x)",
       .description = "x as text: strings unchanged, anything else as JSON."},
      {.name = "to_number",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kAny},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             const Json& v = *a[0];
             if (v.is_number()) {
               out = v;
               return;
             }
             const std::string& s = str(v, "to_number");
             Json parsed = Json::parse(s, nullptr, false);
             if (!parsed.is_number()) throw EvalError("to_number(): '" + s + "' is not a number");
             out = std::move(parsed);
           },
       .signature = "to_number(x)",
       .description = "A number, or a string holding one, as a number."},
      {.name = "round",
       .min_args = 1,
       .max_args = 2,
       .arg_types = {T::kNumber, T::kNumber},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t n, Json& out) {
             const double scale = n == 2 ? std::pow(10.0, integer(*a[1], "round")) : 1.0;
             out = number_result(std::round(num(*a[0], "round") * scale) / scale);
           },
       .signature = "round(x[, digits])",
       .description = "x rounded half away from zero, to `digits` decimals (default 0)."},
      {.name = "floor",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kNumber},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl = [](const Args& a, std::size_t,
                  Json& out) { out = number_result(std::floor(num(*a[0], "floor"))); },
       .signature = "floor(x)",
       .description = "The largest whole number not above x."},
      {.name = "ceil",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kNumber},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl = [](const Args& a, std::size_t,
                  Json& out) { out = number_result(std::ceil(num(*a[0], "ceil"))); },
       .signature = "ceil(x)",
       .description = "The smallest whole number not below x."},
      {.name = "abs",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kNumber},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             if (const std::optional<int64_t> x = exact_integer(*a[0])) {
               if (*x == std::numeric_limits<int64_t>::min())
                 throw EvalError("abs(): integer overflow: abs(" + std::to_string(*x) +
                                 ") does not fit in 64 bits");
               out = *x < 0 ? -*x : *x;
             } else {
               out = std::fabs(num(*a[0], "abs"));
             }
           },
       .signature = "abs(x)",
       .description = "x without its sign."},
      {.name = "is_null",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kAny},
       .result = T::kBool,
       .null_in_null_out = false,
       .impl = [](const Args& a, std::size_t, Json& out) { out = a[0]->is_null(); },
       .signature = "is_null(x)",
       .description = "Whether x is null (a missing field is null)."},
      {.name = "now",
       .min_args = 0,
       .max_args = 0,
       .arg_types = {},
       .result = T::kNumber,
       .null_in_null_out = false,
       .impl =
           [](const Args&, std::size_t, Json& out) {
             out = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
           },
       .signature = "now()",
       .description = "The wall-clock time, in milliseconds since the epoch."},
      {.name = "format_time",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kNumber, T::kString},
       .result = T::kString,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             const int64_t ms = integer(*a[0], "format_time");
             // Rounded down: -1 ms is in the second before the epoch.
             const std::time_t seconds =
                 static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
             std::tm tm{};
             if (gmtime_r(&seconds, &tm) == nullptr)
               throw EvalError("format_time(): time " + std::to_string(ms) +
                               " ms is beyond the calendar");
             char buffer[256];
             const std::size_t size =
                 std::strftime(buffer, sizeof buffer, str(*a[1], "format_time").c_str(), &tm);
             out = std::string(buffer, size);
           },
       .signature = "format_time(ms, format)",
       .description = "Time `ms` (since the epoch) in UTC, by strftime's format."},
      {.name = "parse_time",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kString, T::kString},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             const std::string& s = str(*a[0], "parse_time");
             std::tm tm{};
             const char* end = strptime(s.c_str(), str(*a[1], "parse_time").c_str(), &tm);
             if (end == nullptr || *end != '\0')
               throw EvalError("parse_time(): '" + s + "' does not match the format");
             int64_t ms = 0;
             if (__builtin_mul_overflow(static_cast<int64_t>(timegm(&tm)), 1000, &ms))
               throw EvalError("parse_time(): '" + s + "' is beyond 64-bit milliseconds");
             out = ms;
           },
       .signature = "parse_time(s, format)",
       .description = "Time s in UTC, read by strptime's format, in ms since the epoch."},
      {.name = "random",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kNumber, T::kNumber},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             thread_local std::mt19937_64 generator{std::random_device{}()};
             const int64_t lo = integer(*a[0], "random");
             const int64_t hi = integer(*a[1], "random");
             if (hi < lo) throw EvalError("random() expects lo <= hi");
             out = std::uniform_int_distribution<int64_t>(lo, hi)(generator);
           },
       .signature = "random(lo, hi)",
       .description = "A random integer from lo to hi (both included); for generators."},
      {.name = "pick",
       .min_args = 1,
       .max_args = 1,
       .arg_types = {T::kArray},
       .result = T::kAny,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             thread_local std::mt19937_64 generator{std::random_device{}()};
             if (!a[0]->is_array() || a[0]->empty())
               throw EvalError("pick() expects a non-empty array");
             out = (*a[0])[std::uniform_int_distribution<std::size_t>(0,
                                                                      a[0]->size() - 1)(generator)];
           },
       .signature = "pick(array)",
       .description = "A random element of the array; for generators."},
      {.name = "window_start",
       .min_args = 2,
       .max_args = 2,
       .arg_types = {T::kNumber, T::kNumber},
       .result = T::kNumber,
       .null_in_null_out = true,
       .impl =
           [](const Args& a, std::size_t, Json& out) {
             const int64_t ms = integer(*a[0], "window_start");
             const int64_t size = integer(*a[1], "window_start");
             if (size <= 0) throw EvalError("window_start() expects a positive size");
             int64_t into_window = ms % size;
             if (into_window < 0) into_window += size;
             int64_t start = 0;
             if (__builtin_sub_overflow(ms, into_window, &start))
               throw EvalError("window_start(): the window of time " + std::to_string(ms) +
                               " ms starts before the earliest 64-bit time");
             out = start;
           },
       .signature = "window_start(ms, size_ms)",
       .description = "The start of the `size_ms` window that holds time `ms`."},
  };
  return kFunctions;
}

const Function* find_function(std::string_view name) {
  for (const Function& f : functions())
    if (f.name == name) return &f;
  return nullptr;
}

class Call final : public Node {
 public:
  Call(const Function& function, std::vector<NodePtr> args)
      : Node(function.result, above(args)), function_(function), args_(std::move(args)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    std::array<Json, kMaxArgs> tmp;
    Args values{};
    for (std::size_t i = 0; i < args_.size(); ++i) {
      values[i] = &args_[i]->eval(context, tmp[i]);
      if (function_.null_in_null_out && values[i]->is_null()) return null_json();
    }
    function_.impl(values, args_.size(), scratch);
    return scratch;
  }

 private:
  const Function& function_;
  std::vector<NodePtr> args_;
};

// Builds an object or array from expressions: `{a: value.x}` in a map.
class ArrayLiteral final : public Node {
 public:
  explicit ArrayLiteral(std::vector<NodePtr> elements)
      : Node(ValueType::kArray, above(elements)), elements_(std::move(elements)) {}
  const Json& eval(const EvalContext& context, Json& scratch) const override {
    scratch = Json::array();
    for (const NodePtr& element : elements_) {
      Json tmp;
      scratch.push_back(element->eval(context, tmp));
    }
    return scratch;
  }

 private:
  std::vector<NodePtr> elements_;
};

// ---------------------------------------------------------------------------
// Lexer and parser.

struct Token {
  enum Kind { kEnd, kNumber, kString, kName, kSymbol } kind = kEnd;
  std::string text;
  Json literal;
  std::size_t offset = 0;
};

std::string describe(const Token& token) {
  switch (token.kind) {
    case Token::kEnd:
      return "the end of the expression";
    case Token::kNumber:
      return "number " + token.text;
    case Token::kString:
      return "string " + token.text;
    case Token::kName:
      return "'" + token.text + "'";
    case Token::kSymbol:
      return "'" + token.text + "'";
  }
  return "?";
}

std::vector<Token> lex(std::string_view text) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  auto is_name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  };
  while (true) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
    Token token;
    token.offset = i;
    if (i == text.size()) {
      // "Found the end" is reported just after the last token, not after
      // trailing white space (or the newline a YAML block scalar ends with).
      token.offset = tokens.empty() ? 0 : tokens.back().offset + tokens.back().text.size();
      tokens.push_back(token);
      return tokens;
    }
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      std::size_t end = i;
      bool is_float = false;
      while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) ++end;
      if (end + 1 < text.size() && text[end] == '.' &&
          std::isdigit(static_cast<unsigned char>(text[end + 1])) != 0) {
        is_float = true;
        ++end;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) ++end;
      }
      if (end < text.size() && (text[end] == 'e' || text[end] == 'E')) {
        std::size_t exp = end + 1;
        if (exp < text.size() && (text[exp] == '+' || text[exp] == '-')) ++exp;
        if (exp < text.size() && std::isdigit(static_cast<unsigned char>(text[exp])) != 0) {
          is_float = true;
          end = exp;
          while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0)
            ++end;
        }
      }
      if (end < text.size() && is_name_char(text[end]))
        throw ExpressionError(end, "expected an operator after number " +
                                       std::string(text.substr(i, end - i)) + ", found '" +
                                       std::string(1, text[end]) + "'");
      token.kind = Token::kNumber;
      token.text = std::string(text.substr(i, end - i));
      const char* first = token.text.data();
      const char* last = first + token.text.size();
      if (is_float) {
        double d = 0;
        if (std::from_chars(first, last, d).ec != std::errc())
          throw ExpressionError(
              i, "number " + token.text + " is out of the range of 64-bit floating-point numbers");
        token.literal = d;
      } else {
        int64_t v = 0;
        if (std::from_chars(first, last, v).ec != std::errc())
          throw ExpressionError(i, "number " + token.text + " does not fit in 64 bits");
        token.literal = v;
      }
      i = end;
    } else if (c == '"' || c == '\'') {
      std::string value;
      std::size_t end = i + 1;
      for (; end < text.size() && text[end] != c; ++end) {
        if (text[end] == '\\' && end + 1 < text.size()) {
          const char escaped = text[++end];
          switch (escaped) {
            case 'n':
              value += '\n';
              break;
            case 't':
              value += '\t';
              break;
            case '\\':
            case '"':
            case '\'':
              value += escaped;
              break;
            default:
              throw ExpressionError(end - 1, std::string("unknown escape '\\") + escaped +
                                                 "', expected one of \\n \\t \\\\ \\\" \\'");
          }
        } else {
          value += text[end];
        }
      }
      if (end == text.size())
        throw ExpressionError(i, std::string("unterminated string: expected a closing ") + c);
      token.kind = Token::kString;
      token.text = std::string(text.substr(i, end + 1 - i));
      token.literal = std::move(value);
      i = end + 1;
    } else if (is_name_char(c)) {
      std::size_t end = i;
      while (end < text.size() && is_name_char(text[end])) ++end;
      token.kind = Token::kName;
      token.text = std::string(text.substr(i, end - i));
      i = end;
    } else {
      static constexpr std::string_view kSymbols[] = {"==", "!=", "<=", ">=", "&&", "||", "??",
                                                      "+",  "-",  "*",  "/",  "%",  "<",  ">",
                                                      "!",  "(",  ")",  "[",  "]",  ",",  "."};
      token.kind = Token::kSymbol;
      for (std::string_view symbol : kSymbols) {
        if (text.substr(i).starts_with(symbol)) {
          token.text = std::string(symbol);
          break;
        }
      }
      if (token.text.empty()) {
        if (c == '=') throw ExpressionError(i, "found '=', expected '==' to compare");
        throw ExpressionError(i, std::string("unexpected character '") + c + "'");
      }
      i += token.text.size();
    }
    tokens.push_back(std::move(token));
  }
}

ExpressionError too_deep(std::size_t offset) {
  return ExpressionError(offset, "the expression nests more than " +
                                     std::to_string(kMaxExpressionDepth) +
                                     " levels deep (each parenthesis, bracket, call and operator "
                                     "counts one); split it up, or test a long list of "
                                     "alternatives with contains([...], x)");
}

// In the order of Root.
constexpr std::string_view kRoots[] = {"key", "value", "timestamp", "headers", "left", "right"};
constexpr std::string_view kAggregates[] = {"count", "sum",   "min",  "max",
                                            "avg",   "first", "last", "count_distinct"};

class Parser {
 public:
  Parser(std::string_view text, const Scope& scope)
      : text_(text), tokens_(lex(text)), scope_(scope) {}

  NodePtr parse_all() {
    NodePtr node = parse(0);
    if (peek().kind != Token::kEnd)
      throw ExpressionError(
          peek().offset,
          "expected an operator or the end of the expression, found " + describe(peek()));
    return node;
  }

  AggregateCall parse_aggregate() {
    const Token& name = peek();
    if (name.kind != Token::kName || std::find(std::begin(kAggregates), std::end(kAggregates),
                                               name.text) == std::end(kAggregates)) {
      std::string expected = "an aggregation (";
      for (std::string_view a : kAggregates)
        expected += std::string(a) + (a == kAggregates[7] ? ")" : ", ");
      std::string hint = name.kind == Token::kName ? suggestion(name.text, kAggregates) : "";
      throw ExpressionError(name.offset,
                            "found " + describe(name) + ", expected " + expected + hint);
    }
    const auto function = static_cast<AggregateFunction>(
        std::find(std::begin(kAggregates), std::end(kAggregates), name.text) -
        std::begin(kAggregates));
    advance();
    expect("(");
    AggregateCall call{function, std::nullopt};
    if (function == AggregateFunction::kCount) {
      if (peek().text != ")")
        throw ExpressionError(peek().offset,
                              "count() takes no argument, found " + describe(peek()));
    } else {
      if (peek().text == ")")
        throw ExpressionError(peek().offset, name.text + "() expects an argument, found ')'");
      argument_begin_ = peek().offset;
      parse(0);
      argument_end_ = peek().offset;
    }
    expect(")");
    if (peek().kind != Token::kEnd)
      throw ExpressionError(peek().offset,
                            "expected the end of the aggregation, found " + describe(peek()));
    return call;
  }

  bool reads_metadata_ = false;
  // Where the argument of the aggregation parsed last is in the text.
  std::size_t argument_begin_ = 0;
  std::size_t argument_end_ = 0;

 private:
  const Token& peek() const { return tokens_[position_]; }
  Token advance() { return tokens_[position_ == tokens_.size() - 1 ? position_ : position_++]; }
  void expect(std::string_view symbol) {
    if (peek().kind != Token::kSymbol || peek().text != symbol)
      throw ExpressionError(peek().offset,
                            "expected '" + std::string(symbol) + "', found " + describe(peek()));
    advance();
  }

  // One level of the parser's recursion. Parentheses nest the parser without
  // building nodes, so the tree's depth alone would not bound the stack. A
  // level too many is reported at the token that opened it.
  class Level {
   public:
    explicit Level(Parser& parser) : depth_(parser.depth_) {
      if (depth_ == kMaxExpressionDepth)
        throw too_deep(parser.tokens_[parser.position_ - 1].offset);
      ++depth_;
    }
    ~Level() { --depth_; }
    Level(const Level&) = delete;
    Level& operator=(const Level&) = delete;

   private:
    std::size_t& depth_;
  };

  // Operator chains such as `a or b or c` grow the tree without nesting the
  // parser; evaluating recurses once per level of the tree.
  static NodePtr within_depth(NodePtr node, std::size_t offset) {
    if (node->depth() > kMaxExpressionDepth) throw too_deep(offset);
    return node;
  }

  static int precedence(const Token& token) {
    const std::string& t = token.text;
    if (token.kind == Token::kName) {
      if (t == "or") return 2;
      if (t == "and") return 3;
      return -1;
    }
    if (token.kind != Token::kSymbol) return -1;
    if (t == "??") return 1;
    if (t == "||") return 2;
    if (t == "&&") return 3;
    if (t == "==" || t == "!=") return 4;
    if (t == "<" || t == "<=" || t == ">" || t == ">=") return 5;
    if (t == "+" || t == "-") return 6;
    if (t == "*" || t == "/" || t == "%") return 7;
    return -1;
  }

  NodePtr parse(int min_precedence) {
    const Level level(*this);
    const std::size_t begin = peek().offset;
    NodePtr left = within_depth(parse_unary(), begin);
    while (true) {
      const Token op = peek();
      const int p = precedence(op);
      if (p < 0 || p < min_precedence) break;
      advance();
      NodePtr right = parse(p + 1);
      left = within_depth(binary(op, std::move(left), std::move(right)), op.offset);
    }
    return left;
  }

  void require(const NodePtr& node, ValueType expected, const Token& op, std::string_view side) {
    if (!fits(node->type(), expected))
      throw ExpressionError(op.offset, "operator '" + op.text + "' expects " +
                                           std::string(to_string(expected)) + " " +
                                           std::string(side) + ", found " +
                                           std::string(to_string(node->type())));
  }

  NodePtr binary(const Token& op, NodePtr left, NodePtr right) {
    const std::string& t = op.text;
    if (t == "and" || t == "&&" || t == "or" || t == "||") {
      require(left, ValueType::kBool, op, "on the left");
      require(right, ValueType::kBool, op, "on the right");
      return std::make_shared<Logical>(t == "and" || t == "&&", std::move(left), std::move(right));
    }
    if (t == "??") {
      const ValueType type = left->type() == right->type() ? left->type() : ValueType::kAny;
      return std::make_shared<Coalesce>(std::vector<NodePtr>{std::move(left), std::move(right)},
                                        type);
    }
    if (t == "==" || t == "!=")
      return std::make_shared<Comparison>(t == "==" ? Compare::kEq : Compare::kNe, t,
                                          std::move(left), std::move(right));
    if (t == "<" || t == "<=" || t == ">" || t == ">=") {
      const ValueType a = left->type();
      const ValueType b = right->type();
      auto orderable = [](ValueType v) {
        return v == ValueType::kAny || v == ValueType::kNull || v == ValueType::kNumber ||
               v == ValueType::kString;
      };
      if (!orderable(a) || !orderable(b) ||
          (a != ValueType::kAny && b != ValueType::kAny && a != ValueType::kNull &&
           b != ValueType::kNull && a != b))
        throw ExpressionError(op.offset, "operator '" + t + "' compares two numbers or two " +
                                             "strings, found " + std::string(to_string(a)) +
                                             " and " + std::string(to_string(b)));
      const Compare c = t == "<"    ? Compare::kLt
                        : t == "<=" ? Compare::kLe
                        : t == ">"  ? Compare::kGt
                                    : Compare::kGe;
      return std::make_shared<Comparison>(c, t, std::move(left), std::move(right));
    }
    // Arithmetic; '+' also joins two strings.
    ValueType type = ValueType::kNumber;
    if (t == "+" && (left->type() == ValueType::kString || right->type() == ValueType::kString)) {
      require(left, ValueType::kString, op, "on both sides (or numbers)");
      require(right, ValueType::kString, op, "on both sides (or numbers)");
      type = ValueType::kString;
    } else if (t == "+" && left->type() == ValueType::kAny && right->type() == ValueType::kAny) {
      type = ValueType::kAny;
    } else {
      require(left, ValueType::kNumber, op, "on the left");
      require(right, ValueType::kNumber, op, "on the right");
    }
    return std::make_shared<Arithmetic>(t[0], std::move(left), std::move(right), type);
  }

  NodePtr parse_unary() {
    const Token token = peek();
    if ((token.kind == Token::kName && token.text == "not") ||
        (token.kind == Token::kSymbol && token.text == "!")) {
      advance();
      // Looser than comparisons: `not a == b` is `not (a == b)`.
      NodePtr child = parse(4);
      if (!fits(child->type(), ValueType::kBool))
        throw ExpressionError(token.offset, "'" + token.text + "' expects a boolean, found " +
                                                std::string(to_string(child->type())));
      return std::make_shared<Not>(std::move(child));
    }
    if (token.kind == Token::kSymbol && token.text == "-") {
      advance();
      NodePtr child = parse(8);
      if (!fits(child->type(), ValueType::kNumber))
        throw ExpressionError(token.offset, "unary '-' expects a number, found " +
                                                std::string(to_string(child->type())));
      return std::make_shared<Negate>(std::move(child));
    }
    return parse_postfix(parse_primary());
  }

  NodePtr parse_postfix(NodePtr node) {
    while (peek().kind == Token::kSymbol && peek().text == "[") {
      const std::size_t bracket = advance().offset;
      NodePtr index = parse(0);
      expect("]");
      node = within_depth(std::make_shared<Index>(std::move(node), std::move(index)), bracket);
    }
    return node;
  }

  NodePtr parse_primary() {
    const Token token = advance();
    switch (token.kind) {
      case Token::kNumber:
        return std::make_shared<Literal>(token.literal, ValueType::kNumber);
      case Token::kString:
        return std::make_shared<Literal>(token.literal, ValueType::kString);
      case Token::kName:
        return parse_name(token);
      case Token::kSymbol:
        if (token.text == "(") {
          NodePtr inner = parse(0);
          expect(")");
          return inner;
        }
        if (token.text == "[") {
          std::vector<NodePtr> elements;
          if (peek().text != "]") {
            elements.push_back(parse(0));
            while (peek().text == ",") {
              advance();
              elements.push_back(parse(0));
            }
          }
          expect("]");
          return std::make_shared<ArrayLiteral>(std::move(elements));
        }
        break;
      case Token::kEnd:
        break;
    }
    throw ExpressionError(token.offset,
                          "expected a value, a name or '(', found " + describe(token));
  }

  NodePtr parse_name(const Token& token) {
    const std::string& name = token.text;
    if (name == "true" || name == "false")
      return std::make_shared<Literal>(Json(name == "true"), ValueType::kBool);
    if (name == "null") return std::make_shared<Literal>(Json(), ValueType::kNull);
    if (peek().kind == Token::kSymbol && peek().text == "(") return parse_call(token);
    const auto root = std::find(std::begin(kRoots), std::end(kRoots), name);
    const bool side = root != std::end(kRoots) && (*root == "left" || *root == "right");
    if (side && !scope_.join_sides)
      throw ExpressionError(token.offset, "'" + name +
                                              "' is known only in a join's value, expected key, "
                                              "value, timestamp, headers, a literal or a "
                                              "function call");
    if (root == std::end(kRoots))
      throw ExpressionError(token.offset,
                            "unknown name '" + name + "', expected key, value, timestamp, " +
                                (scope_.join_sides ? "headers, left, right" : "headers") +
                                ", a literal or a function call" +
                                suggestion(name, std::span<const std::string_view>(
                                                     kRoots, scope_.join_sides ? 6 : 4)));
    std::vector<std::string> fields;
    std::string path = name;
    while (peek().kind == Token::kSymbol && peek().text == ".") {
      advance();
      const Token field = advance();
      if (field.kind != Token::kName)
        throw ExpressionError(field.offset,
                              "expected a field name after '.', found " + describe(field));
      if ((*root == "value" || *root == "left") && fields.empty() && scope_.value_fields &&
          !scope_.value_fields->contains(field.text)) {
        std::string known;
        for (const std::string& f : *scope_.value_fields) known += (known.empty() ? "" : ", ") + f;
        throw ExpressionError(field.offset,
                              "unknown field '" + std::string(*root) + "." + field.text +
                                  "', expected one of: " + (known.empty() ? "(none)" : known) +
                                  suggestion(field.text, *scope_.value_fields));
      }
      if (*root == "timestamp")
        throw ExpressionError(field.offset,
                              "timestamp is a number and has no field '" + field.text + "'");
      if (*root == "headers" && !fields.empty())
        throw ExpressionError(field.offset,
                              "a header is a string and has no field '" + field.text + "'");
      fields.push_back(field.text);
      path += "." + field.text;
    }
    const Root r = static_cast<Root>(root - std::begin(kRoots));
    if (r == Root::kTimestamp || r == Root::kHeaders) reads_metadata_ = true;
    return std::make_shared<Path>(r, std::move(fields), std::move(path));
  }

  NodePtr parse_call(const Token& name) {
    advance();  // (
    std::vector<NodePtr> args;
    std::vector<std::size_t> offsets;
    if (peek().text != ")") {
      offsets.push_back(peek().offset);
      args.push_back(parse(0));
      while (peek().kind == Token::kSymbol && peek().text == ",") {
        advance();
        offsets.push_back(peek().offset);
        args.push_back(parse(0));
      }
    }
    expect(")");
    if (std::find(std::begin(kAggregates), std::end(kAggregates), name.text) !=
        std::end(kAggregates))
      throw ExpressionError(name.offset, name.text +
                                             "() is an aggregation: it belongs in `aggregate`, "
                                             "not in an expression");
    if (name.text == "if") {
      if (args.size() != 3)
        throw ExpressionError(name.offset,
                              "if() expects 3 arguments (condition, then, else), "
                              "found " +
                                  std::to_string(args.size()));
      if (!fits(args[0]->type(), ValueType::kBool))
        throw ExpressionError(offsets[0], "if() expects a boolean condition, found " +
                                              std::string(to_string(args[0]->type())));
      const ValueType type = args[1]->type() == args[2]->type() ? args[1]->type() : ValueType::kAny;
      return std::make_shared<If>(args[0], args[1], args[2], type);
    }
    if (name.text == "coalesce") {
      if (args.empty())
        throw ExpressionError(name.offset, "coalesce() expects at least 1 argument, found 0");
      return std::make_shared<Coalesce>(std::move(args), ValueType::kAny);
    }
    const Function* function = find_function(name.text);
    if (function == nullptr) {
      std::vector<std::string_view> names = {"if", "coalesce"};
      for (const Function& f : functions()) names.push_back(f.name);
      throw ExpressionError(name.offset,
                            "unknown function '" + name.text + "'" + suggestion(name.text, names));
    }
    if (args.size() < function->min_args || args.size() > function->max_args) {
      const std::string expected =
          function->min_args == function->max_args
              ? std::to_string(function->min_args)
              : std::to_string(function->min_args) + " to " + std::to_string(function->max_args);
      throw ExpressionError(name.offset, std::string(function->signature) + " expects " + expected +
                                             " argument" + (function->max_args == 1 ? "" : "s") +
                                             ", found " + std::to_string(args.size()));
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
      const ValueType expected = function->arg_types[std::min(i, function->arg_types.size() - 1)];
      if (!fits(args[i]->type(), expected))
        throw ExpressionError(offsets[i], std::string(function->signature) + ": argument " +
                                              std::to_string(i + 1) + " must be " +
                                              std::string(to_string(expected)) + ", found " +
                                              std::string(to_string(args[i]->type())));
    }
    return std::make_shared<Call>(*function, std::move(args));
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  std::size_t position_ = 0;
  // How deeply parse() is nested right now.
  std::size_t depth_ = 0;
  const Scope& scope_;
};

}  // namespace

Expression Expression::compile(std::string_view text, const Scope& scope) {
  Expression expression;
  expression.text_ = std::string(text);
  Parser parser(text, scope);
  expression.root_ = parser.parse_all();
  expression.reads_metadata_ = parser.reads_metadata_;
  return expression;
}

Json Expression::evaluate(const EvalContext& context) const {
  Json scratch;
  const Json& result = root_->eval(context, scratch);
  if (&result == &scratch) return scratch;
  return result;
}

bool Expression::test(const EvalContext& context) const {
  Json scratch;
  return truth(root_->eval(context, scratch), "the condition '" + text_ + "'");
}

ValueType Expression::type() const {
  return root_->type();
}

bool Expression::reads_metadata() const {
  return reads_metadata_;
}

bool Expression::is_key() const {
  const std::string_view trimmed = [&] {
    std::string_view t = text_;
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front())) != 0)
      t.remove_prefix(1);
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back())) != 0)
      t.remove_suffix(1);
    return t;
  }();
  return trimmed == "key";
}

AggregateCall compile_aggregate(std::string_view text, const Scope& scope) {
  Parser parser(text, scope);
  AggregateCall call = parser.parse_aggregate();
  if (call.function != AggregateFunction::kCount)
    call.argument = Expression::compile(
        text.substr(parser.argument_begin_, parser.argument_end_ - parser.argument_begin_), scope);
  return call;
}

const std::vector<FunctionDoc>& function_docs() {
  static const std::vector<FunctionDoc> kDocs = [] {
    std::vector<FunctionDoc> docs = {
        {"if(condition, then, else)", "`then` when the condition is true, else `else`."},
        {"coalesce(x, ...)", "The first argument that is not null (also `x ?? y`)."}};
    for (const Function& f : functions()) docs.push_back({f.signature, f.description});
    return docs;
  }();
  return kDocs;
}

}  // namespace rill::pipeline
