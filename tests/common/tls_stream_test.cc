// TlsStream, the production transport, on loopback with certificates from
// scripts/make-certs.sh: a real city PKI and an impostor's (another CA, same names). The
// agent's side refuses a collector whose certificate another CA signed or that names another
// host; the collector's side refuses an agent from another CA, and names a good one by its
// certificate's CN.
#include "common/transport/tls_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/tls.h"

namespace citywatch {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::awaitable;
using asio::ip::tcp;

class TlsStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("cw-tls-stream-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    for (const char* pki : {"city", "impostor"}) {
      const std::string cmd = "bash " CITYWATCH_SOURCE_DIR "/scripts/make-certs.sh " +
                              (dir_ / pki).string() + " agent-a >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::unique_ptr<asio::ssl::context> context(TlsRole role, const std::string& ca_pki,
                                                     const std::string& cert_pki,
                                                     const std::string& name) {
    std::unique_ptr<asio::ssl::context> ctx;
    const TlsFiles files{(dir_ / ca_pki / "ca.pem").string(),
                         (dir_ / cert_pki / (name + ".pem")).string(),
                         (dir_ / cert_pki / (name + ".key")).string()};
    const Status s = make_tls_context(role, files, ctx);
    EXPECT_TRUE(s.is_ok()) << s.message();
    return ctx;
  }

  struct Outcome {
    boost::system::error_code client_ec, server_ec;
    std::string stage;
    std::string agent;  // the CN the collector's side saw
    std::string echoed;
  };

  // A collector-side stream with `server` and an agent-side one with `client` meet on
  // loopback; the agent expects the collector to be `server_name`. On success the agent
  // sends "ping" and the collector echoes it.
  static Outcome meet(asio::ssl::context& server, asio::ssl::context& client,
                      const std::string& server_name, const std::string& host = "127.0.0.1") {
    asio::io_context io(1);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const std::uint16_t port = acceptor.local_endpoint().port();
    Outcome out;
    int finished = 0;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
          TlsStream s(std::move(socket), server);
          co_await s.accept_handshake(out.server_ec);
          if (!out.server_ec) {
            out.agent = s.peer_common_name();
            std::array<std::byte, 4> buf;
            boost::system::error_code ec;
            if (co_await read_exactly(s, buf, ec)) co_await write_all(s, buf, ec);
          }
          if (++finished == 2) io.stop();
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          TlsStream s(io, client);
          const char* stage = "";
          const ConnectTarget target{host, port, server_name};
          co_await s.connect(target, out.client_ec, stage);
          out.stage = stage;
          if (!out.client_ec) {
            const std::array<std::byte, 4> ping = {std::byte{'p'}, std::byte{'i'}, std::byte{'n'},
                                                   std::byte{'g'}};
            std::array<std::byte, 4> back{};
            boost::system::error_code ec;
            if (co_await write_all(s, ping, ec) && co_await read_exactly(s, back, ec))
              out.echoed.assign(reinterpret_cast<const char*>(back.data()), back.size());
          }
          s.close();
          if (++finished == 2) io.stop();
        },
        asio::detached);
    io.run_for(std::chrono::seconds(20));
    EXPECT_EQ(finished, 2) << "a side did not finish within 20 s";
    return out;
  }

  static inline fs::path dir_;
};

TEST_F(TlsStreamTest, TheCityCollectorAndAgentMeetAndTheAgentIsNamedByItsCertificate) {
  auto server = context(TlsRole::kServer, "city", "city", "collector");
  auto client = context(TlsRole::kClient, "city", "city", "agent-a");
  const Outcome o = meet(*server, *client, "localhost");
  EXPECT_FALSE(o.client_ec) << o.stage << ": " << o.client_ec.message();
  EXPECT_FALSE(o.server_ec) << o.server_ec.message();
  EXPECT_EQ(o.agent, "agent-a");
  EXPECT_EQ(o.echoed, "ping");
}

// A collector given by name is looked up (an address, as above, is not): "localhost" may
// resolve to ::1 first, where nothing listens, and the next address is tried.
TEST_F(TlsStreamTest, AnAgentReachesACollectorGivenByName) {
  auto server = context(TlsRole::kServer, "city", "city", "collector");
  auto client = context(TlsRole::kClient, "city", "city", "agent-a");
  const Outcome o = meet(*server, *client, "localhost", "localhost");
  EXPECT_FALSE(o.client_ec) << o.stage << ": " << o.client_ec.message();
  EXPECT_FALSE(o.server_ec) << o.server_ec.message();
  EXPECT_EQ(o.agent, "agent-a");
  EXPECT_EQ(o.echoed, "ping");
}

TEST_F(TlsStreamTest, AnAgentRefusesACollectorAnotherCaSigned) {
  auto server = context(TlsRole::kServer, "city", "impostor", "collector");
  auto client = context(TlsRole::kClient, "city", "city", "agent-a");
  const Outcome o = meet(*server, *client, "localhost");
  EXPECT_TRUE(o.client_ec) << "the agent accepted an impostor collector";
  EXPECT_EQ(o.stage, "TLS handshake");
  EXPECT_TRUE(o.echoed.empty());
}

TEST_F(TlsStreamTest, AnAgentRefusesACollectorCertifiedForAnotherName) {
  auto server = context(TlsRole::kServer, "city", "city", "collector");
  auto client = context(TlsRole::kClient, "city", "city", "agent-a");
  const Outcome o = meet(*server, *client, "collector-2.city.example");
  EXPECT_TRUE(o.client_ec) << "the agent accepted a certificate for another name";
  EXPECT_EQ(o.stage, "TLS handshake");
}

TEST_F(TlsStreamTest, ACollectorRefusesAnAgentAnotherCaSigned) {
  auto server = context(TlsRole::kServer, "city", "city", "collector");
  auto client = context(TlsRole::kClient, "city", "impostor", "agent-a");
  const Outcome o = meet(*server, *client, "localhost");
  EXPECT_TRUE(o.server_ec) << "the collector accepted an impostor agent";
  EXPECT_TRUE(o.agent.empty());
  EXPECT_TRUE(o.echoed.empty());
}

}  // namespace
}  // namespace citywatch

namespace citywatch {
namespace {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  return v;
}

// Writes go out many records at a time (TlsStream::write_some, outside Boost.Asio's engine)
// while the same stream reads: both sides send and receive at once, every byte arrives in
// order, and one write_some() takes up to kMaxWrite bytes, not one 16 KiB record. The
// collector's side writes a head and a tail (as the agent's forwarder writes a frame's
// header and first bytes, then the rest of its batch): one write_some_joined() takes
// kMaxWrite bytes of the two, head first.
TEST_F(TlsStreamTest, BulkWritesBothWaysAtOnceArriveWhole) {
  auto server_ctx = context(TlsRole::kServer, "city", "city", "collector");
  auto client_ctx = context(TlsRole::kClient, "city", "city", "agent-a");
  const std::vector<std::byte> up = pattern((3 << 20) + 12345, 1);  // agent -> collector
  const std::vector<std::byte> down = pattern((1 << 20) + 777, 2);  // collector -> agent
  std::vector<std::byte> got_up(up.size()), got_down(down.size());
  boost::system::error_code up_write, up_read, down_write, down_read, hs;
  std::size_t first_write = 0, first_joined = 0;
  int finished = 0;

  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::uint16_t port = acceptor.local_endpoint().port();
  std::unique_ptr<TlsStream> server, client;
  auto done = [&] {
    if (++finished == 4) io.stop();
  };
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        server = std::make_unique<TlsStream>(std::move(socket), *server_ctx);
        co_await server->accept_handshake(hs);
        if (hs) {
          finished += 2;
          done();
          co_return;
        }
        asio::co_spawn(
            io,
            [&]() -> awaitable<void> {
              co_await read_exactly(*server, got_up, up_read);
              done();
            },
            asio::detached);
        const std::span<const std::byte> head = std::span<const std::byte>(down).first(16384);
        const std::span<const std::byte> tail = std::span<const std::byte>(down).subspan(16384);
        first_joined = co_await server->write_some_joined(head, tail, down_write);
        if (!down_write) {
          const std::size_t in_head = std::min(first_joined, head.size());
          co_await write_all(*server, head.subspan(in_head), tail.subspan(first_joined - in_head),
                             down_write);
        }
        done();
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        client = std::make_unique<TlsStream>(io, *client_ctx);
        const char* stage = "";
        boost::system::error_code ec;
        const ConnectTarget target{
            "127.0.0.1", port,
            "localhost"};  // named: GCC 12 destroys a co_await operand's temporaries twice
        co_await client->connect(target, ec, stage);
        if (ec) {
          finished += 2;
          done();
          co_return;
        }
        asio::co_spawn(
            io,
            [&]() -> awaitable<void> {
              co_await read_exactly(*client, got_down, down_read);
              done();
            },
            asio::detached);
        first_write = co_await client->write_some(up, up_write);
        if (!up_write)
          co_await write_all(*client, std::span<const std::byte>(up).subspan(first_write),
                             up_write);
        done();
      },
      asio::detached);
  io.run_for(std::chrono::seconds(30));
  ASSERT_EQ(finished, 4) << "the transfers did not finish within 30 s";
  ASSERT_FALSE(hs) << hs.message();
  EXPECT_FALSE(up_write) << up_write.message();
  EXPECT_FALSE(up_read) << up_read.message();
  EXPECT_FALSE(down_write) << down_write.message();
  EXPECT_FALSE(down_read) << down_read.message();
  EXPECT_EQ(first_write, TlsStream::kMaxWrite);
  EXPECT_EQ(first_joined, TlsStream::kMaxWrite);
  EXPECT_TRUE(got_up == up) << "the agent's bytes arrived changed";
  EXPECT_TRUE(got_down == down) << "the collector's bytes arrived changed";
}

}  // namespace
}  // namespace citywatch
