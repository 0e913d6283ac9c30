#include "agent/snmp/if_walk.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <algorithm>
#include <type_traits>

namespace citywatch::agent {

static_assert(std::is_same_v<oid, unsigned long>, "IfWalk's cursors hold net-snmp oids");

namespace {

// IF-MIB (RFC 2863 section 6): ifEntry = 1.3.6.1.2.1.2.2.1, ifXEntry = 1.3.6.1.2.1.31.1.1.1.
constexpr std::uint32_t kIfEntry[] = {1, 3, 6, 1, 2, 1, 2, 2, 1};
constexpr std::uint32_t kIfXEntry[] = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1};
constexpr std::size_t kIfEntryLen = 9;
constexpr std::size_t kIfXEntryLen = 10;

struct ColumnDef {
  bool x;             // ifXEntry
  std::uint32_t sub;  // column number
  bool text;          // DisplayString
};
constexpr ColumnDef kColumns[IfWalk::kNumCols] = {
    {false, 2, true},    // ifDescr
    {false, 3, false},   // ifType
    {false, 5, false},   // ifSpeed
    {false, 7, false},   // ifAdminStatus
    {false, 8, false},   // ifOperStatus
    {false, 10, false},  // ifInOctets
    {false, 11, false},  // ifInUcastPkts
    {false, 13, false},  // ifInDiscards
    {false, 14, false},  // ifInErrors
    {false, 16, false},  // ifOutOctets
    {false, 17, false},  // ifOutUcastPkts
    {false, 19, false},  // ifOutDiscards
    {false, 20, false},  // ifOutErrors
    {true, 1, true},     // ifName
    {true, 2, false},    // ifInMulticastPkts
    {true, 3, false},    // ifInBroadcastPkts
    {true, 4, false},    // ifOutMulticastPkts
    {true, 5, false},    // ifOutBroadcastPkts
    {true, 6, false},    // ifHCInOctets
    {true, 7, false},    // ifHCInUcastPkts
    {true, 8, false},    // ifHCInMulticastPkts
    {true, 9, false},    // ifHCInBroadcastPkts
    {true, 10, false},   // ifHCOutOctets
    {true, 11, false},   // ifHCOutUcastPkts
    {true, 12, false},   // ifHCOutMulticastPkts
    {true, 13, false},   // ifHCOutBroadcastPkts
    {true, 15, false},   // ifHighSpeed
    {true, 18, true},    // ifAlias
    {true, 19, false},   // ifCounterDiscontinuityTime
    {false, 12, false},  // ifInNUcastPkts
    {false, 18, false},  // ifOutNUcastPkts
};

// Column OIDs, prefix + column number, built once at compile time.
struct ColumnOids {
  std::uint32_t oid[IfWalk::kNumCols][kIfXEntryLen + 1];
  std::size_t len[IfWalk::kNumCols];
  constexpr ColumnOids() : oid{}, len{} {
    for (int c = 0; c < IfWalk::kNumCols; ++c) {
      const std::uint32_t* base = kColumns[c].x ? kIfXEntry : kIfEntry;
      const std::size_t n = kColumns[c].x ? kIfXEntryLen : kIfEntryLen;
      for (std::size_t i = 0; i < n; ++i) oid[c][i] = base[i];
      oid[c][n] = kColumns[c].sub;
      len[c] = n + 1;
    }
  }
};
constexpr ColumnOids kColumnOids;

bool in_column(const oid* name, std::size_t len, IfWalk::Col c) {
  // Exactly prefix.column.ifIndex: ifIndex is one sub-identifier.
  if (len != kColumnOids.len[c] + 1) return false;
  for (std::size_t i = 0; i < kColumnOids.len[c]; ++i)
    if (name[i] != kColumnOids.oid[c][i]) return false;
  return name[len - 1] <= 0xffffffffu;
}

bool numeric(const netsnmp_variable_list* v, std::uint64_t& out) {
  switch (v->type) {
    case ASN_INTEGER:
      out = static_cast<std::uint64_t>(*v->val.integer < 0 ? 0 : *v->val.integer);
      return v->val_len >= sizeof(long);
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
      out = static_cast<std::uint64_t>(*v->val.integer) & 0xffffffffu;
      return v->val_len >= sizeof(long);
    case ASN_COUNTER64:
      if (v->val_len < sizeof(counter64)) return false;
      out = (static_cast<std::uint64_t>(v->val.counter64->high) << 32) |
            (v->val.counter64->low & 0xffffffffu);
      return true;
    default:
      return false;
  }
}

}  // namespace

const std::uint32_t* IfWalk::column_oid(Col c, std::size_t& len) {
  len = kColumnOids.len[c];
  return kColumnOids.oid[c];
}

void IfWalk::begin(std::uint32_t max_rows) {
  max_rows_ = max_rows;
  rows_.clear();
  for (int c = 0; c < kNumCols; ++c) {
    Cursor& cur = cursor_[c];
    cur.len = kColumnOids.len[c];
    for (std::size_t i = 0; i < cur.len; ++i) cur.oid[i] = kColumnOids.oid[c][i];
    cur.values = 0;
    cur.active = true;
  }
}

std::size_t IfWalk::active_count() const {
  std::size_t n = 0;
  for (const Cursor& c : cursor_) n += c.active;
  return n;
}

IfWalk::Row* IfWalk::row(std::uint32_t if_index) {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), if_index,
                             [](const Row& r, std::uint32_t i) { return r.if_index < i; });
  if (it != rows_.end() && it->if_index == if_index) return &*it;
  if (rows_.size() >= max_rows_) {
    ++stats_.rows_dropped;
    return nullptr;
  }
  Row r;
  r.if_index = if_index;
  return &*rows_.insert(it, r);
}

void IfWalk::apply(const netsnmp_variable_list* vars) {
  if (sent_count_ == 0) return;
  std::array<bool, kNumCols> ended{};
  std::size_t i = 0;
  for (const netsnmp_variable_list* v = vars; v; v = v->next_variable, ++i) {
    const Col c = static_cast<Col>(sent_[i % sent_count_]);
    Cursor& cur = cursor_[c];
    if (ended[c] || !cur.active) continue;
    if (v->type == SNMP_ENDOFMIBVIEW || v->type == SNMP_NOSUCHOBJECT ||
        v->type == SNMP_NOSUCHINSTANCE || !in_column(v->name, v->name_length, c)) {
      cur.active = false;
      ended[c] = true;
      continue;
    }
    // A GETBULK answer must move forward (RFC 3416 section 4.2.3); a device that repeats
    // itself would otherwise keep the walk going for ever.
    if (snmp_oid_compare(v->name, v->name_length, cur.oid.data(), cur.len) <= 0) {
      ++stats_.bad_order;
      cur.active = false;
      ended[c] = true;
      continue;
    }
    std::copy(v->name, v->name + v->name_length, cur.oid.begin());
    cur.len = v->name_length;
    // A column has one value per interface, so one with more values than max_rows has rows
    // that would be dropped anyway: it ends here. This bounds a walk at about
    // max_rows / max-repetitions requests, whatever the device answers.
    if (++cur.values > max_rows_) {
      ++stats_.rows_dropped;
      cur.active = false;
      ended[c] = true;
      continue;
    }
    Row* r = row(static_cast<std::uint32_t>(v->name[v->name_length - 1]));
    if (!r) continue;
    if (kColumns[c].text) {
      if (v->type != ASN_OCTET_STR) {
        ++stats_.bad_values;
        continue;
      }
      const std::string_view s(reinterpret_cast<const char*>(v->val.string), v->val_len);
      if (c == kName) r->name.assign(s);
      if (c == kAlias) r->alias.assign(s);
      if (c == kDescr) r->descr.assign(s);
    } else {
      std::uint64_t value = 0;
      if (!numeric(v, value)) {
        ++stats_.bad_values;
        continue;
      }
      r->v[c] = value;
    }
    r->present |= std::uint64_t{1} << c;
  }
}

}  // namespace citywatch::agent
