#include "collector/rules_engine/expression.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdlib>

namespace citywatch::collector {

namespace {
bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '/' || c == '-';
}
bool parse_number(std::string_view w, double& out) {
  if (w.empty() || !((w[0] >= '0' && w[0] <= '9') || w[0] == '-')) return false;
  std::string s(w);
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}
bool parse_ip(std::string_view w, IpAddr& out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (w.size() >= sizeof buf) return false;
  w.copy(buf, w.size());
  buf[w.size()] = '\0';
  if (inet_pton(AF_INET, buf, out.bytes.data()) == 1) {
    out.family = IpAddr::Family::kV4;
    return true;
  }
  if (inet_pton(AF_INET6, buf, out.bytes.data()) == 1) {
    out.family = IpAddr::Family::kV6;
    return true;
  }
  return false;
}
const char* type_name(Value::Type t) {
  switch (t) {
    case Value::Type::kNum:
      return "a number";
    case Value::Type::kIp:
      return "an address";
    case Value::Type::kStr:
      return "a string";
    case Value::Type::kMac:
      return "a MAC";
    case Value::Type::kNone:
      return "nothing";
  }
  return "?";
}
}  // namespace

// Bounds on one `where:` expression, checked while parsing (issue 11: 10,000 nested
// parentheses or 100,000 `not`s overflowed the parser's stack, and a 60,000-term `or`
// chain parsed, then overflowed eval()'s). Nesting bounds the parser's recursion; the node
// count bounds the tree eval() walks, so its recursion too (at most kMaxNodes deep). Real
// rules use tens of nodes.
constexpr std::size_t kMaxExprBytes = 16 * 1024;
constexpr int kMaxNesting = 32;
constexpr std::size_t kMaxNodes = 1024;

class ExprParser {
 public:
  ExprParser(std::string_view text, RuleSource source, const ListResolver& lists, Expr& out)
      : text_(text), source_(source), lists_(lists), out_(out) {}

  bool run(std::string& error) {
    if (text_.size() > kMaxExprBytes) {
      error = "expression of " + std::to_string(text_.size()) + " bytes; at most " +
              std::to_string(kMaxExprBytes);
      return false;
    }
    next();
    const int root = parse_or();
    if (root >= 0 && tok_ != Tok::kEnd)
      fail("expected 'and', 'or' or the end, got '" + std::string(word_) + "'");
    if (!error_.empty()) {
      error = error_;
      return false;
    }
    out_.root_ = root;
    return true;
  }

 private:
  enum class Tok {
    kEnd,
    kWord,
    kString,
    kList,
    kOp,
    kLParen,
    kRParen,
    kLBracket,
    kRBracket,
    kComma
  };

  void fail(const std::string& what) {
    if (error_.empty()) error_ = "at column " + std::to_string(tok_pos_ + 1) + ": " + what;
  }

  void next() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n'))
      ++pos_;
    tok_pos_ = pos_;
    if (pos_ >= text_.size()) {
      tok_ = Tok::kEnd;
      word_ = "end of expression";
      return;
    }
    const char c = text_[pos_];
    auto single = [&](Tok t) {
      tok_ = t;
      word_ = text_.substr(pos_, 1);
      ++pos_;
    };
    if (c == '(') return single(Tok::kLParen);
    if (c == ')') return single(Tok::kRParen);
    if (c == '[') return single(Tok::kLBracket);
    if (c == ']') return single(Tok::kRBracket);
    if (c == ',') return single(Tok::kComma);
    if (c == '\'' || c == '"') {
      const auto end = text_.find(c, pos_ + 1);
      if (end == std::string_view::npos) {
        fail("unterminated string");
        tok_ = Tok::kEnd;
        pos_ = text_.size();
        return;
      }
      tok_ = Tok::kString;
      word_ = text_.substr(pos_ + 1, end - pos_ - 1);
      pos_ = end + 1;
      return;
    }
    if (c == '@') {
      std::size_t e = pos_ + 1;
      while (e < text_.size() && word_char(text_[e])) ++e;
      tok_ = Tok::kList;
      word_ = text_.substr(pos_ + 1, e - pos_ - 1);
      pos_ = e;
      return;
    }
    static constexpr std::string_view kOps[] = {"==", "!=", "<=", ">=", "&&", "||", "<", ">", "!"};
    for (std::string_view op : kOps)
      if (text_.substr(pos_, op.size()) == op) {
        tok_ = Tok::kOp;
        word_ = text_.substr(pos_, op.size());
        pos_ += op.size();
        return;
      }
    if (word_char(c)) {
      std::size_t e = pos_;
      while (e < text_.size() && word_char(text_[e])) ++e;
      tok_ = Tok::kWord;
      word_ = text_.substr(pos_, e - pos_);
      pos_ = e;
      return;
    }
    fail(std::string("unexpected character '") + c + "'");
    tok_ = Tok::kEnd;
    pos_ = text_.size();
  }

  bool is_word(std::string_view w) const { return tok_ == Tok::kWord && word_ == w; }

  int add(Expr::Node n) {
    if (out_.nodes_.size() >= kMaxNodes) {
      fail("more than " + std::to_string(kMaxNodes) + " terms and operators in one expression");
      return -1;
    }
    out_.nodes_.push_back(std::move(n));
    return static_cast<int>(out_.nodes_.size()) - 1;
  }

  // A left-associative chain of one binary operator, spelled as a word or a symbol, over
  // operands parsed by `operand` (the next tighter level).
  int parse_chain(Expr::Op op, const char* word, const char* symbol, int (ExprParser::*operand)()) {
    int lhs = (this->*operand)();
    while (lhs >= 0 && (is_word(word) || (tok_ == Tok::kOp && word_ == symbol))) {
      next();
      const int rhs = (this->*operand)();
      if (rhs < 0) return -1;
      Expr::Node n;
      n.op = op;
      n.lhs = lhs;
      n.rhs = rhs;
      lhs = add(std::move(n));
    }
    return lhs;
  }
  int parse_or() { return parse_chain(Expr::Op::kOr, "or", "||", &ExprParser::parse_and); }
  int parse_and() { return parse_chain(Expr::Op::kAnd, "and", "&&", &ExprParser::parse_unary); }

  // Nesting (parentheses, not) is bounded: each level is a recursion of the parser.
  struct Nest {
    ExprParser& p;
    explicit Nest(ExprParser& parser) : p(parser) { ++p.depth_; }
    ~Nest() { --p.depth_; }
  };

  int parse_unary() {
    const Nest nest(*this);
    if (depth_ > kMaxNesting) {
      fail("nested more than " + std::to_string(kMaxNesting) + " levels deep (parentheses, not)");
      return -1;
    }
    if (is_word("not") || (tok_ == Tok::kOp && word_ == "!")) {
      next();
      const int inner = parse_unary();
      if (inner < 0) return -1;
      Expr::Node n;
      n.op = Expr::Op::kNot;
      n.lhs = inner;
      return add(std::move(n));
    }
    if (tok_ == Tok::kLParen) {
      next();
      const int inner = parse_or();
      if (inner < 0) return -1;
      if (tok_ != Tok::kRParen) {
        fail("expected ')', got '" + std::string(word_) + "'");
        return -1;
      }
      next();
      return inner;
    }
    return parse_comparison();
  }

  // A constant of the field's type; false (with an error) if the token is not one.
  bool constant(Value::Type type, Value& out) {
    if (type == Value::Type::kStr) {
      if (tok_ != Tok::kString && tok_ != Tok::kWord) {
        fail("expected a quoted string, got '" + std::string(word_) + "'");
        return false;
      }
      out = Value::string(out_.strings_.emplace_back(word_));
      next();
      return true;
    }
    if (tok_ != Tok::kWord) {
      fail(std::string("expected ") + type_name(type) + ", got '" + std::string(word_) + "'");
      return false;
    }
    if (type == Value::Type::kNum) {
      static constexpr std::pair<std::string_view, double> kNamed[] = {
          {"tcp", 6}, {"udp", 17}, {"icmp", 1}, {"icmpv6", 58}, {"true", 1}, {"false", 0}};
      double v = 0;
      bool ok = parse_number(word_, v);
      for (const auto& [n, x] : kNamed)
        if (word_ == n) {
          v = x;
          ok = true;
        }
      if (!ok) {
        fail("expected a number, got '" + std::string(word_) + "'");
        return false;
      }
      out = Value::number(v);
    } else if (type == Value::Type::kIp) {
      IpAddr a;
      if (!parse_ip(word_, a)) {
        fail("expected an IP address, got '" + std::string(word_) + "'");
        return false;
      }
      out = Value::address(a);
    } else if (type == Value::Type::kMac) {
      unsigned b[6];
      char tail;
      const std::string w(word_);
      if (std::sscanf(w.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                      &tail) != 6) {
        fail("expected a MAC address aa:bb:cc:dd:ee:ff, got '" + w + "'");
        return false;
      }
      std::uint64_t m = 0;
      for (unsigned x : b) m = (m << 8) | (x & 0xff);
      out.type = Value::Type::kMac;
      out.num = static_cast<double>(m);
    }
    next();
    return true;
  }

  int parse_comparison() {
    if (tok_ != Tok::kWord) {
      fail("expected a field name, got '" + std::string(word_) + "'");
      return -1;
    }
    const FieldDef* field = find_field(source_, word_);
    if (!field) {
      fail("unknown field '" + std::string(word_) + "' for " + to_string(source_) +
           " records (known: " + field_names(source_) + ")");
      return -1;
    }
    next();
    Expr::Node n;
    n.field = field;
    bool negate = false;
    if (is_word("not")) {
      next();
      if (!is_word("in")) {
        fail("expected 'in' after 'not'");
        return -1;
      }
      negate = true;
    }
    if (is_word("in")) {
      next();
      n.negate = negate;
      return parse_in(std::move(n));
    }
    if (tok_ == Tok::kOp && word_ != "!" && word_ != "&&" && word_ != "||") {
      static constexpr std::pair<std::string_view, Expr::Cmp> kCmps[] = {
          {"==", Expr::Cmp::kEq}, {"!=", Expr::Cmp::kNe}, {"<", Expr::Cmp::kLt},
          {"<=", Expr::Cmp::kLe}, {">", Expr::Cmp::kGt},  {">=", Expr::Cmp::kGe}};
      for (const auto& [s, c] : kCmps)
        if (word_ == s) n.cmp = c;
      const bool ordered = n.cmp != Expr::Cmp::kEq && n.cmp != Expr::Cmp::kNe;
      if (ordered && field->type != Value::Type::kNum) {
        fail("'" + std::string(word_) + "' needs a numeric field; '" + std::string(field->name) +
             "' is " + type_name(field->type));
        return -1;
      }
      next();
      n.op = Expr::Op::kCmp;
      if (!constant(field->type, n.constant)) return -1;
      return add(std::move(n));
    }
    static constexpr std::pair<std::string_view, Expr::StrOp> kStrOps[] = {
        {"starts_with", Expr::StrOp::kStartsWith},
        {"ends_with", Expr::StrOp::kEndsWith},
        {"contains", Expr::StrOp::kContains}};
    for (const auto& [s, o] : kStrOps)
      if (is_word(s)) {
        if (field->type != Value::Type::kStr) {
          fail("'" + std::string(s) + "' needs a string field; '" + std::string(field->name) +
               "' is " + type_name(field->type));
          return -1;
        }
        next();
        n.op = Expr::Op::kStr;
        n.str_op = o;
        if (!constant(Value::Type::kStr, n.constant)) return -1;
        return add(std::move(n));
      }
    if (field->type != Value::Type::kNum) {
      fail("'" + std::string(field->name) + "' is " + type_name(field->type) +
           "; compare it with ==, !=, in");
      return -1;
    }
    n.op = Expr::Op::kTruthy;
    return add(std::move(n));
  }

  int parse_in(Expr::Node n) {
    const Value::Type type = n.field->type;
    if (tok_ == Tok::kList) {
      if (type != Value::Type::kIp) {
        fail("@" + std::string(word_) + " is an address list; '" + std::string(n.field->name) +
             "' is " + type_name(type));
        return -1;
      }
      n.set = lists_ ? lists_(word_) : nullptr;
      if (!n.set) {
        fail("no list named '" + std::string(word_) + "' (declare it under lists:)");
        return -1;
      }
      n.op = Expr::Op::kInSet;
      next();
      return add(std::move(n));
    }
    if (type == Value::Type::kIp) {
      // A CIDR, an address, or a bracketed list of them: built into an inline set.
      auto set = std::make_unique<IpSet>();
      auto one = [&]() {
        if (tok_ != Tok::kWord || !set->add(word_)) {
          fail("expected an IP address or CIDR, got '" + std::string(word_) + "'");
          return false;
        }
        next();
        return true;
      };
      if (tok_ == Tok::kLBracket) {
        next();
        while (tok_ != Tok::kRBracket) {
          if (!one()) return -1;
          if (tok_ == Tok::kComma)
            next();
          else if (tok_ != Tok::kRBracket) {
            fail("expected ',' or ']', got '" + std::string(word_) + "'");
            return -1;
          }
        }
        next();
      } else if (!one()) {
        return -1;
      }
      set->build();
      n.set = set.get();
      out_.sets_.push_back(std::move(set));
      n.op = Expr::Op::kInSet;
      return add(std::move(n));
    }
    if (tok_ != Tok::kLBracket) {
      fail("expected '[' to start a list of values, got '" + std::string(word_) + "'");
      return -1;
    }
    next();
    while (tok_ != Tok::kRBracket) {
      Value v;
      if (!constant(type, v)) return -1;
      n.values.push_back(v);
      if (tok_ == Tok::kComma)
        next();
      else if (tok_ != Tok::kRBracket) {
        fail("expected ',' or ']', got '" + std::string(word_) + "'");
        return -1;
      }
    }
    next();
    n.op = Expr::Op::kInValues;
    return add(std::move(n));
  }

  std::string_view text_;
  RuleSource source_;
  const ListResolver& lists_;
  Expr& out_;
  int depth_ = 0;
  std::size_t pos_ = 0;
  std::size_t tok_pos_ = 0;
  Tok tok_ = Tok::kEnd;
  std::string_view word_;
  std::string error_;
};

bool Expr::compile(std::string_view text, RuleSource source, const ListResolver& lists, Expr& out,
                   std::string& error) {
  out = Expr();
  if (text.find_first_not_of(" \t\n") == std::string_view::npos) return true;
  ExprParser p(text, source, lists, out);
  if (!p.run(error)) {
    out = Expr();
    return false;
  }
  return true;
}

namespace {
bool equal(const Value& a, const Value& b) {
  switch (a.type) {
    case Value::Type::kIp:
      return a.ip == b.ip;
    case Value::Type::kStr:
      return a.str == b.str;
    default:
      return a.num == b.num;
  }
}
}  // namespace

bool Expr::eval(int i, const EvalInput& in) const {
  const Node& n = nodes_[static_cast<std::size_t>(i)];
  switch (n.op) {
    case Op::kAnd:
      return eval(n.lhs, in) && eval(n.rhs, in);
    case Op::kOr:
      return eval(n.lhs, in) || eval(n.rhs, in);
    case Op::kNot:
      return !eval(n.lhs, in);
    case Op::kTruthy:
      return n.field->get(in).num != 0;
    case Op::kCmp: {
      const Value v = n.field->get(in);
      switch (n.cmp) {
        case Cmp::kEq:
          return equal(v, n.constant);
        case Cmp::kNe:
          return !equal(v, n.constant);
        case Cmp::kLt:
          return v.num < n.constant.num;
        case Cmp::kLe:
          return v.num <= n.constant.num;
        case Cmp::kGt:
          return v.num > n.constant.num;
        case Cmp::kGe:
          return v.num >= n.constant.num;
      }
      return false;
    }
    case Op::kInValues: {
      const Value v = n.field->get(in);
      bool found = false;
      for (const Value& c : n.values)
        if (equal(v, c)) {
          found = true;
          break;
        }
      return found != n.negate;
    }
    case Op::kInSet:
      return n.set->contains(n.field->get(in).ip) != n.negate;
    case Op::kStr: {
      const std::string_view s = n.field->get(in).str;
      const std::string_view c = n.constant.str;
      switch (n.str_op) {
        case StrOp::kStartsWith:
          return s.substr(0, c.size()) == c;
        case StrOp::kEndsWith:
          return s.size() >= c.size() && s.substr(s.size() - c.size()) == c;
        case StrOp::kContains:
          return s.find(c) != std::string_view::npos;
      }
      return false;
    }
  }
  return false;
}

}  // namespace citywatch::collector
