// TlsStream, the production transport, on loopback with certificates from
// scripts/make-certs.sh: a real city PKI and an impostor's (another CA, same names). The
// agent's side refuses a collector whose certificate another CA signed or that names another
// host; the collector's side refuses an agent from another CA, and names a good one by its
// certificate's CN.
#include "common/transport/tls_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

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
                      const std::string& server_name) {
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
          const ConnectTarget target{"127.0.0.1", port, server_name};
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
