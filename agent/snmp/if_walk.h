// IfWalk: one device's walk of IF-MIB ifTable and ifXTable (RFC 2863), column by column in
// parallel: each GETBULK carries one varbind per column still running, so a 59-interface
// switch answers in a handful of requests instead of one walk per table. It also holds the
// rows the walk found, reused from one poll to the next (cleared, never shrunk), so a steady
// poll does not allocate.
//
// The walk never trusts the device: a varbind outside its column, an OID that does not
// increase, endOfMibView or a value of the wrong type ends that column or is skipped and
// counted; rows beyond max_rows are dropped and counted, and a column that gives more than
// max_rows values ends, so a walk takes at most about max_rows / max-repetitions requests
// however many interfaces the device claims.
//
// Thread-safety: none; owned by the poller, used on its io thread.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "common/record.h"

struct variable_list;  // net-snmp's netsnmp_variable_list

namespace citywatch::agent {

class IfWalk {
 public:
  // The columns walked. ifEntry: 1.3.6.1.2.1.2.2.1.N, ifXEntry: 1.3.6.1.2.1.31.1.1.1.N.
  enum Col : std::uint8_t {
    kDescr,
    kType,
    kSpeed,
    kAdminStatus,
    kOperStatus,
    kInOctets,
    kInUcast,
    kInDiscards,
    kInErrors,
    kOutOctets,
    kOutUcast,
    kOutDiscards,
    kOutErrors,
    kName,
    kInMcast,
    kInBcast,
    kOutMcast,
    kOutBcast,
    kHCInOctets,
    kHCInUcast,
    kHCInMcast,
    kHCInBcast,
    kHCOutOctets,
    kHCOutUcast,
    kHCOutMcast,
    kHCOutBcast,
    kHighSpeed,
    kAlias,
    kDiscontinuityTime,
    kInNUcast,  // ifInNUcastPkts (deprecated; devices without ifXTable have only it)
    kOutNUcast,
    kNumCols
  };
  static constexpr std::size_t kMaxOid = 32;

  struct Row {
    std::uint32_t if_index = 0;
    std::uint64_t present = 0;  // bit per Col
    std::array<std::uint64_t, kNumCols> v{};
    ShortName name;
    LongName alias;
    LongName descr;
    bool has(Col c) const { return (present >> c) & 1; }
  };

  struct Stats {
    std::uint64_t rows_dropped = 0;  // beyond max_rows
    std::uint64_t bad_values = 0;    // wrong type for the column
    std::uint64_t bad_order = 0;     // an OID that did not increase: the column was ended
  };

  // Starts a new walk of every column.
  void begin(std::uint32_t max_rows);
  bool done() const { return active_count() == 0; }
  // The OIDs for the next GETBULK, one per running column, in request order.
  template <typename F>
  void for_each_request_oid(F&& f) {
    sent_count_ = 0;
    for (std::uint8_t c = 0; c < kNumCols; ++c) {
      if (!cursor_[c].active) continue;
      sent_[sent_count_++] = c;
      f(cursor_[c].oid.data(), cursor_[c].len);
    }
  }
  // Applies a GETBULK response to the request built last.
  void apply(const variable_list* vars);

  const std::vector<Row>& rows() const { return rows_; }
  Stats& stats() { return stats_; }

  // The base OID of a column (without the ifIndex).
  static const std::uint32_t* column_oid(Col c, std::size_t& len);

 private:
  struct Cursor {
    std::array<unsigned long, kMaxOid> oid{};  // net-snmp's oid is unsigned long
    std::size_t len = 0;
    std::uint32_t values = 0;  // values taken this walk: at most max_rows_, then it ends
    bool active = false;
  };
  std::size_t active_count() const;
  Row* row(std::uint32_t if_index);

  std::array<Cursor, kNumCols> cursor_{};
  std::array<std::uint8_t, kNumCols> sent_{};
  std::size_t sent_count_ = 0;
  std::vector<Row> rows_;
  std::uint32_t max_rows_ = 0;
  Stats stats_;
};

}  // namespace citywatch::agent
