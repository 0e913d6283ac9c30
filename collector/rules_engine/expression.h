// Expression: a rule's condition ("where", "except", "while"), compiled once from text.
//
//   protocol == tcp and syn_only and not (src in @known_scanners)
//   dst_port in [22, 2222] and dst in 10.20.0.0/16
//   dns.max_label_len >= 40 or dns.entropy > 4.0
//   dns.name ends_with '.city.example'
//
// Grammar: or / and / not (also ||, &&, !), parentheses, comparisons (== != < <= > >=), `in`
// and `not in` against a bracketed list of constants, a CIDR, or a named list (@name);
// string tests starts_with, ends_with, contains; a bare field is true when non-zero.
// Identifiers are fields of the rule's record kind (field.h); tcp, udp, icmp, icmpv6, true and
// false are constants. Field names and types are checked at compile time, so evaluation
// cannot fail: it walks a flat node array and never allocates.
//
// Thread-safety: immutable after compile; eval() is const.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collector/rules_engine/field.h"
#include "collector/rules_engine/ip_set.h"

namespace citywatch::collector {

// Resolves "@name" to a loaded list; nullptr if there is none.
using ListResolver = std::function<const IpSet*(std::string_view name)>;

class Expr {
 public:
  Expr() = default;
  Expr(Expr&&) = default;
  Expr& operator=(Expr&&) = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;

  // False with a message saying what was expected where ("at column 12: ...").
  static bool compile(std::string_view text, RuleSource source, const ListResolver& lists,
                      Expr& out, std::string& error);

  bool empty() const { return nodes_.empty(); }
  // An empty expression is true.
  bool eval(const EvalInput& in) const { return nodes_.empty() || eval(root_, in); }

 private:
  friend class ExprParser;
  enum class Op : std::uint8_t { kAnd, kOr, kNot, kTruthy, kCmp, kInValues, kInSet, kStr };
  enum class Cmp : std::uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
  enum class StrOp : std::uint8_t { kStartsWith, kEndsWith, kContains };
  struct Node {
    Op op = Op::kTruthy;
    Cmp cmp = Cmp::kEq;
    StrOp str_op = StrOp::kContains;
    bool negate = false;  // for `not in`
    const FieldDef* field = nullptr;
    int lhs = -1, rhs = -1;
    Value constant;
    const IpSet* set = nullptr;
    std::vector<Value> values;
  };
  bool eval(int n, const EvalInput& in) const;

  std::vector<Node> nodes_;
  int root_ = -1;
  std::deque<std::string> strings_;          // storage for string constants
  std::deque<std::unique_ptr<IpSet>> sets_;  // inline CIDR sets: `in 10.0.0.0/8`
};

}  // namespace citywatch::collector
