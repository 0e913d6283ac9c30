// Unit tests for agent/snmp: counter wrap and discontinuity, the IF-MIB walk's handling of
// device answers, trap decoding, and config validation.
#include <gtest/gtest.h>
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <algorithm>
#include <fstream>

#include "agent/snmp/counter_tracker.h"
#include "agent/snmp/if_walk.h"
#include "agent/snmp/snmp_ber.h"
#include "agent/snmp/snmp_config.h"
#include "agent/snmp/trap_receiver.h"

namespace citywatch::agent {
namespace {

CounterTracker::Values all(std::uint64_t v) {
  CounterTracker::Values x;
  x.fill(v);
  return x;
}

TEST(CounterTracker, FirstSampleIsADiscontinuity) {
  CounterTracker t;
  CounterTracker::Values out{};
  EXPECT_TRUE(t.update(all(100), {}, false, out));
  EXPECT_EQ(out[0], 100u);
  EXPECT_FALSE(t.update(all(150), {}, false, out));
  EXPECT_EQ(out[0], 150u);
}

TEST(CounterTracker, ThirtyTwoBitWrapIsExtended) {
  CounterTracker t;
  CounterTracker::Values out{};
  t.update(all(0xffffff00u), {}, false, out);
  EXPECT_FALSE(t.update(all(0x10), {}, false, out));
  EXPECT_EQ(out[0], 0xffffff00ull + 0x110);  // 0x100 to the wrap, then 0x10
}

TEST(CounterTracker, RebootRestartsWithoutSpike) {
  CounterTracker t;
  CounterTracker::Values out{};
  t.update(all(2000000000), {}, false, out);
  EXPECT_TRUE(t.update(all(1000), {}, true, out));
  EXPECT_EQ(out[0], 1000u);  // not 1000 - 2e9 + 2^32
}

TEST(CounterTracker, SixtyFourBitGoingBackIsADiscontinuity) {
  CounterTracker t;
  CounterTracker::Values out{};
  CounterTracker::Wide wide;
  wide.fill(true);
  t.update(all(1ull << 40), wide, false, out);
  EXPECT_TRUE(t.update(all(5), wide, false, out));
  EXPECT_EQ(out[3], 5u);
  EXPECT_FALSE(t.update(all(7), wide, false, out));
  EXPECT_EQ(out[3], 7u);
}

// A GETBULK answer as net-snmp would hand it over.
class Answer {
 public:
  ~Answer() { snmp_free_varbind(vars_); }
  void add(IfWalk::Col c, std::uint32_t if_index, u_char type, const void* value, std::size_t len) {
    std::size_t base_len = 0;
    const std::uint32_t* base = IfWalk::column_oid(c, base_len);
    oid name[MAX_OID_LEN];
    for (std::size_t i = 0; i < base_len; ++i) name[i] = base[i];
    name[base_len] = if_index;
    snmp_varlist_add_variable(&vars_, name, base_len + 1, type, value, len);
  }
  void add_int(IfWalk::Col c, std::uint32_t i, long v) { add(c, i, ASN_INTEGER, &v, sizeof v); }
  void add_str(IfWalk::Col c, std::uint32_t i, const char* s) {
    add(c, i, ASN_OCTET_STR, s, std::strlen(s));
  }
  void add_end(IfWalk::Col c) { add(c, 1, SNMP_ENDOFMIBVIEW, nullptr, 0); }
  const netsnmp_variable_list* vars() const { return vars_; }

 private:
  netsnmp_variable_list* vars_ = nullptr;
};

TEST(IfWalk, ParallelColumnsFillRowsAndEnd) {
  IfWalk w;
  w.begin(16);
  std::vector<IfWalk::Col> order;
  w.for_each_request_oid([&order](const unsigned long* o, std::size_t len) {
    order.push_back(static_cast<IfWalk::Col>(0));
    (void)o;
    (void)len;
  });
  ASSERT_EQ(order.size(), static_cast<std::size_t>(IfWalk::kNumCols));
  // One repetition: every column answers for ifIndex 5, except ifAlias which has ended.
  Answer a;
  for (int c = 0; c < IfWalk::kNumCols; ++c) {
    const auto col = static_cast<IfWalk::Col>(c);
    if (col == IfWalk::kAlias)
      a.add_end(col);
    else if (col == IfWalk::kDescr || col == IfWalk::kName)
      a.add_str(col, 5, "Gi0/5");
    else
      a.add_int(col, 5, 7);
  }
  w.apply(a.vars());
  ASSERT_EQ(w.rows().size(), 1u);
  EXPECT_EQ(w.rows()[0].if_index, 5u);
  EXPECT_EQ(w.rows()[0].name.view(), "Gi0/5");
  EXPECT_TRUE(w.rows()[0].has(IfWalk::kOperStatus));
  EXPECT_FALSE(w.rows()[0].has(IfWalk::kAlias));
  EXPECT_FALSE(w.done());
  // A device answering an OID that does not move forward ends every column.
  std::size_t n = 0;
  w.for_each_request_oid([&n](const unsigned long*, std::size_t) { ++n; });
  EXPECT_EQ(n, static_cast<std::size_t>(IfWalk::kNumCols - 1));
  Answer again;
  for (int c = 0; c < IfWalk::kNumCols; ++c) {
    const auto col = static_cast<IfWalk::Col>(c);
    if (col != IfWalk::kAlias) again.add_int(col, 5, 7);
  }
  w.apply(again.vars());
  EXPECT_TRUE(w.done());
  EXPECT_GT(w.stats().bad_order, 0u);
}

TEST(IfWalk, RowsBeyondTheCapAreDroppedAndCounted) {
  IfWalk w;
  w.begin(2);
  w.for_each_request_oid([](const unsigned long*, std::size_t) {});
  Answer a;
  // Three repetitions of ifType only would need a single-column request; emulate a device
  // answering with wrong types too.
  for (std::uint32_t i = 1; i <= 3; ++i)
    for (int c = 0; c < IfWalk::kNumCols; ++c) {
      const auto col = static_cast<IfWalk::Col>(c);
      a.add_int(col, i, 1);  // an integer where a DisplayString belongs is a bad value
    }
  w.apply(a.vars());
  EXPECT_EQ(w.rows().size(), 2u);
  EXPECT_GT(w.stats().rows_dropped, 0u);
  EXPECT_GT(w.stats().bad_values, 0u);
}

// A device that claims endless interfaces (every answer moves forward, so the order check
// never fires) cannot keep the walk going: each column ends after max_rows values.
TEST(IfWalk, AnEndlessTableEndsAfterMaxRowsValuesPerColumn) {
  IfWalk w;
  w.begin(4);
  std::uint32_t next_index = 1;
  int requests = 0;
  while (!w.done() && requests < 1000) {
    ++requests;
    std::vector<IfWalk::Col> cols;
    w.for_each_request_oid([&cols](const unsigned long* o, std::size_t len) {
      for (int c = 0; c < IfWalk::kNumCols; ++c) {
        std::size_t base_len = 0;
        const std::uint32_t* base = IfWalk::column_oid(static_cast<IfWalk::Col>(c), base_len);
        if (len >= base_len && std::equal(base, base + base_len, o)) {
          cols.push_back(static_cast<IfWalk::Col>(c));
          break;
        }
      }
    });
    Answer a;
    for (int rep = 0; rep < 3; ++rep, ++next_index)
      for (IfWalk::Col col : cols) a.add_int(col, next_index, 1);
    w.apply(a.vars());
  }
  EXPECT_TRUE(w.done());
  EXPECT_LE(requests, 2);  // 4 rows + 1 over the cap, 3 repetitions per request
  EXPECT_EQ(w.rows().size(), 4u);
  EXPECT_GT(w.stats().rows_dropped, 0u);
}

TEST(TrapReceiver, DecodesLinkDown) {
  netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_TRAP2);
  pdu->version = SNMP_VERSION_2c;
  const oid uptime[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
  const oid trap_oid[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
  const oid link_down[] = {1, 3, 6, 1, 6, 3, 1, 1, 5, 3};
  const oid if_index[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 4};
  const oid if_oper[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 4};
  long ticks = 12345, idx = 4, oper = 2;
  snmp_pdu_add_variable(pdu, uptime, OID_LENGTH(uptime), ASN_TIMETICKS, &ticks, sizeof ticks);
  snmp_pdu_add_variable(pdu, trap_oid, OID_LENGTH(trap_oid), ASN_OBJECT_ID, link_down,
                        sizeof link_down);
  snmp_pdu_add_variable(pdu, if_index, OID_LENGTH(if_index), ASN_INTEGER, &idx, sizeof idx);
  snmp_pdu_add_variable(pdu, if_oper, OID_LENGTH(if_oper), ASN_INTEGER, &oper, sizeof oper);
  SnmpTrap t;
  ASSERT_TRUE(TrapReceiver::decode(pdu, t));
  EXPECT_EQ(t.kind, SnmpTrapKind::kLinkDown);
  EXPECT_EQ(t.if_index, 4u);
  EXPECT_EQ(t.oper_status, 2u);
  EXPECT_EQ(t.uptime_cs, 12345u);
  EXPECT_EQ(t.varbind_count, 2u);
  EXPECT_EQ(t.varbinds[0].value.view(), "4");
  snmp_free_pdu(pdu);
}

TEST(TrapReceiver, RefusesANotificationWithoutTrapOid) {
  netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_TRAP2);
  SnmpTrap t;
  EXPECT_FALSE(TrapReceiver::decode(pdu, t));
  snmp_free_pdu(pdu);
}

Status parse(const std::string& yaml, SnmpConfig& out) {
  ConfigReader reader = ConfigReader::from_string(yaml, "test.yaml", ".");
  ConfigMap root = reader.root();
  ConfigMap snmp = root.map("snmp");
  read_snmp_config(snmp, out);
  root.done();
  return reader.status();
}

// The USM header of a real snmptrap -v3 message (noAuthNoPriv, user "cwpriv", engine
// 80000000010203): what the receiver reads to tell an unknown user from a wrong engine.
TEST(TrapReceiver, PeeksUserAndEngineFromTheUsmHeader) {
  const std::vector<std::uint8_t> msg = {
      0x30, 0x35, 0x02, 0x01, 0x03,                                // SEQUENCE, msgVersion 3
      0x30, 0x0f, 0x02, 0x02, 0x12, 0x34, 0x02, 0x03, 0x00, 0xff,  // msgGlobalData
      0xe3, 0x04, 0x01, 0x00, 0x02, 0x01, 0x03,                    //
      0x04, 0x1d, 0x30, 0x1b,                                      // msgSecurityParameters
      0x04, 0x07, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03,        // engine ID
      0x02, 0x01, 0x01, 0x02, 0x01, 0x02,                          // boots, time
      0x04, 0x06, 'c',  'w',  'p',  'r',  'i',  'v',               // user name
      0x04, 0x00, 0x04, 0x00,                                      // auth, priv params
      0x30, 0x00};                                                 // scoped PDU (elided)
  std::string user, engine;
  ASSERT_TRUE(TrapReceiver::peek_usm_header(msg, user, engine));
  EXPECT_EQ(user, "cwpriv");
  EXPECT_EQ(engine, "80000000010203");
  // Every truncation is refused, never read past.
  for (std::size_t n = 0; n < msg.size(); ++n)
    EXPECT_FALSE(TrapReceiver::peek_usm_header({msg.data(), n}, user, engine)) << n;
  std::vector<std::uint8_t> v2 = msg;
  v2[4] = 0x01;  // msgVersion 1 (v2c): not a v3 message
  EXPECT_FALSE(TrapReceiver::peek_usm_header(v2, user, engine));
}

TEST(SnmpBer, PassesOnlyBerWhoseLengthsFit) {
  // A genuine v3 message shape: every length fits.
  const std::vector<std::uint8_t> msg = {
      0x30, 0x35, 0x02, 0x01, 0x03, 0x30, 0x0f, 0x02, 0x02, 0x12, 0x34, 0x02, 0x03, 0x00,
      0xff, 0xe3, 0x04, 0x01, 0x00, 0x02, 0x01, 0x03, 0x04, 0x1d, 0x30, 0x1b, 0x04, 0x07,
      0x80, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x04,
      0x06, 'c',  'w',  'p',  'r',  'i',  'v',  0x04, 0x00, 0x04, 0x00, 0x30, 0x00};
  EXPECT_TRUE(snmp_well_formed(msg));
  for (std::size_t n = 0; n < msg.size(); ++n) EXPECT_FALSE(snmp_well_formed({msg.data(), n})) << n;
  // Found by snmp_trap_fuzz: the USM parameters claim 47 bytes where 30 follow, and the
  // outer SEQUENCE 280 where 56 do. net-snmp 5.9.3's snmp_parse reads past the buffer.
  const std::vector<std::uint8_t> crash = {
      0x30, 0x81, 0x18, 0x02, 0x01, 0x03, 0x30, 0x11, 0x02, 0x04, 0x45, 0x66, 0x4b, 0x2f, 0x02,
      0x03, 0x00, 0xff, 0xe3, 0x04, 0x01, 0x01, 0x02, 0x01, 0x03, 0x04, 0x2f, 0x30, 0x2d, 0x04,
      0x0b, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc, 0x02, 0x01, 0x01,
      0x02, 0x03, 0x00, 0x30, 0x4f, 0x04, 0x11, 0x80, 0x00, 0x1f, 0x88, 0x80, 0x1d, 0x78};
  EXPECT_FALSE(snmp_well_formed(crash));
  // The same lie inside the USM parameters only, the outer lengths made consistent.
  std::vector<std::uint8_t> inner = msg;
  inner[25] = 0x30;  // the USM SEQUENCE claims more than its OCTET STRING holds
  EXPECT_FALSE(snmp_well_formed(inner));
  // Indefinite lengths, high tag numbers and nesting beyond 16 levels are refused.
  EXPECT_FALSE(snmp_well_formed(std::vector<std::uint8_t>{0x30, 0x80, 0x00, 0x00}));
  EXPECT_FALSE(snmp_well_formed(std::vector<std::uint8_t>{0x30, 0x02, 0x1f, 0x00}));
  std::vector<std::uint8_t> deep;
  for (int i = 0; i < 40; ++i) deep.insert(deep.begin(), {0x30, static_cast<std::uint8_t>(2 * i)});
  EXPECT_FALSE(snmp_well_formed(deep));
  // A v2c message is checked as BER only.
  const std::vector<std::uint8_t> v2c = {0x30, 0x09, 0x02, 0x01, 0x01, 0x04,
                                         0x02, 'c',  'w',  0xa7, 0x00};
  EXPECT_TRUE(snmp_well_formed(v2c));
}

TEST(SnmpConfig, DefaultsApplyToTargets) {
  SnmpConfig c;
  const Status st = parse(R"(snmp:
  defaults: {interval: 30s, community: city}
  targets:
    - {address: 10.0.0.1}
    - {name: fw, address: '::1', version: 3, user: u, auth_protocol: SHA-256,
       auth_password: 12345678, priv_protocol: AES-256, priv_password: abcdefgh}
)",
                          c);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(c.targets.size(), 2u);
  EXPECT_EQ(c.targets[0].name, "10.0.0.1");
  EXPECT_EQ(c.targets[0].community, "city");
  EXPECT_EQ(c.targets[0].interval, std::chrono::seconds(30));
  EXPECT_EQ(c.targets[1].version, 3);
}

TEST(SnmpConfig, SecretsFromFiles) {
  const std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/community") << "s3cret-community\n";
  std::ofstream(dir + "/auth.pass") << "auth-pass-phrase\n";
  std::ofstream(dir + "/traps.list") << "trap-one\ntrap-two\n";
  const std::string yaml = R"(snmp:
  targets:
    - {address: 10.0.0.1, community_file: community}
    - {address: 10.0.0.2, version: 3, user: u, auth_protocol: SHA, auth_password_file: auth.pass}
  traps:
    listen: 127.0.0.1:0
    communities_file: traps.list
)";
  ConfigReader reader = ConfigReader::from_string(yaml, "test.yaml", dir);
  ConfigMap root = reader.root();
  ConfigMap snmp = root.map("snmp");
  SnmpConfig c;
  read_snmp_config(snmp, c);
  root.done();
  ASSERT_TRUE(reader.status().is_ok()) << reader.status().message();
  ASSERT_EQ(c.targets.size(), 2u);
  EXPECT_EQ(c.targets[0].community, "s3cret-community");
  EXPECT_EQ(c.targets[1].v3.auth_password, "auth-pass-phrase");
  EXPECT_EQ(c.trap_communities, (std::vector<std::string>{"trap-one", "trap-two"}));

  SnmpConfig bad;
  const Status st = parse(R"(snmp:
  targets:
    - {address: 10.0.0.1, community: a, community_file: /nonexistent/community}
)",
                          bad);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("test.yaml:3:"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not both"), std::string::npos) << st.message();
}

TEST(SnmpConfig, ErrorsNameFileLineAndKeyWithoutSecrets) {
  SnmpConfig c;
  const Status s = parse(R"(snmp:
  targets:
    - address: router.example
    - address: 10.0.0.2
      version: 3
      user: u
      auth_protocol: MD5
      auth_password: short-secret-x
      priv_protocol: AES
      priv_password: tiny
    - address: 10.0.0.3
      interval: 1s
      timeout: 1s
)",
                         c);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("test.yaml:3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("address"), std::string::npos);
  EXPECT_NE(s.message().find("auth_protocol"), std::string::npos);
  EXPECT_NE(s.message().find("priv_password"), std::string::npos);
  EXPECT_NE(s.message().find("timeout"), std::string::npos);
  EXPECT_EQ(s.message().find("tiny"), std::string::npos);
  EXPECT_EQ(s.message().find("short-secret-x"), std::string::npos);
}

}  // namespace
}  // namespace citywatch::agent
