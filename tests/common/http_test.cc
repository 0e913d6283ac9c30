// The metrics endpoint against real clients (Beast, OpenSSL) on loopback: web config
// parsing, basic auth counted by reason, client certificates enforced, and stalled clients
// that cannot keep a scrape from being answered.
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/http/basic_auth.h"
#include "common/http/metrics_server.h"
#include "common/http/web_config.h"
#include "common/secret.h"

namespace citywatch::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// htpasswd -nbBC 10 prometheus s3cret
constexpr const char* kHash = "$2y$10$xjVjEc.WczBbcnLw8dOo9u7ugjnEPGNzBd/I/hevN2SV4UTovKt1m";

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "httpXXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  // A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl(1).
  void make_certs() {
    const std::string d = dir_.string();
    const std::string cmd =
        "cd " + d +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
        " -subj /CN=test-ca -keyout ca.key -out ca.pem"
        " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=server"
        " -keyout server.key -out server.csr"
        " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext"
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -extfile san.ext -out server.pem"
        " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=scraper"
        " -keyout client.key -out client.csr"
        " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -out client.pem) >/dev/null 2>&1";
    ASSERT_EQ(std::system(("(" + cmd).c_str()), 0) << cmd;
  }
  std::filesystem::path dir_;
};

double value(prometheus::Registry& r, const std::string& name, const std::string& label = "") {
  double total = 0;
  for (const auto& f : r.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      bool match = label.empty();
      for (const auto& l : m.label) match |= l.value == label;
      if (!match) continue;
      total += f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return total;
}

// One GET over plain HTTP; returns the status (0 on a transport error).
unsigned get(std::uint16_t port, const std::string& target, const std::string& authorization,
             std::string* body = nullptr) {
  asio::io_context io;
  beast::tcp_stream s(io);
  beast::error_code ec;
  s.expires_after(std::chrono::seconds(20));
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return 0;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!authorization.empty()) req.set(bhttp::field::authorization, authorization);
  bhttp::write(s, req, ec);
  beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res, ec);
  if (ec) return 0;
  if (body) *body = res.body();
  return res.result_int();
}

// One GET over TLS; client_cert "" presents none. Returns 0 when the handshake fails.
unsigned get_tls(std::uint16_t port, const std::string& ca, const std::string& client_cert,
                 const std::string& client_key) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(ca);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (!client_cert.empty()) {
    ctx.use_certificate_chain_file(client_cert);
    ctx.use_private_key_file(client_key, asio::ssl::context::pem);
  }
  beast::ssl_stream<beast::tcp_stream> s(io, ctx);
  beast::error_code ec;
  beast::get_lowest_layer(s).expires_after(std::chrono::seconds(20));
  beast::get_lowest_layer(s).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return 0;
  s.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return 0;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/metrics", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  bhttp::write(s, req, ec);
  if (ec) return 0;  // TLS 1.3: a refused client certificate shows after the handshake
  beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res, ec);
  if (ec) return 0;
  return res.result_int();
}

std::string basic(const std::string& user, const std::string& password) {
  const std::string raw = user + ":" + password;
  std::string out(beast::detail::base64::encoded_size(raw.size()), '\0');
  out.resize(beast::detail::base64::encode(out.data(), raw.data(), raw.size()));
  return "Basic " + out;
}

TEST_F(HttpTest, ParsesExporterToolkitWebConfig) {
  make_certs();
  const std::string file =
      write("web.yml", std::string("tls_server_config:\n"
                                   "  cert_file: server.pem\n"
                                   "  key_file: server.key\n"
                                   "  client_ca_file: ca.pem\n"
                                   "  client_auth_type: RequireAndVerifyClientCert\n"
                                   "  min_version: TLS13\n"
                                   "basic_auth_users:\n"
                                   "  prometheus: ") +
                           kHash + "\n");
  WebConfig wc;
  ASSERT_TRUE(load_web_config(file, wc)) << load_web_config(file, wc).message();
  ASSERT_TRUE(wc.tls);
  EXPECT_EQ(wc.tls->cert_file, (dir_ / "server.pem").string());
  EXPECT_EQ(wc.tls->client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(wc.tls->min_version, TLS1_3_VERSION);
  EXPECT_EQ(wc.basic_auth_users.at("prometheus"), kHash);
}

TEST_F(HttpTest, WebConfigErrorsNameFileLineAndKey) {
  make_certs();
  const std::string file = write("web.yml",
                                 "tls_server_config:\n"
                                 "  cert_file: server.pem\n"
                                 "  key_file: server.key\n"
                                 "  client_ca_file: ca.pem\n"
                                 "  min_vresion: TLS12\n"
                                 "basic_auth_users:\n"
                                 "  alice: plaintext\n");
  WebConfig wc;
  const Status s = load_web_config(file, wc);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find(file + ":5:"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("min_vresion"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("client_auth_type that uses them"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(file + ":7:"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("bcrypt"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("plaintext"), std::string::npos) << "a secret was echoed";
}

TEST_F(HttpTest, BcryptAndBasicHeader) {
  EXPECT_TRUE(bcrypt_matches("s3cret", kHash));
  EXPECT_FALSE(bcrypt_matches("s3cret ", kHash));
  EXPECT_FALSE(bcrypt_matches("", kHash));
  // crypt() stops at a NUL; the password does not.
  EXPECT_FALSE(bcrypt_matches(std::string("s3cret\0junk", 11), kHash));
  EXPECT_FALSE(bcrypt_matches(std::string("s3cret\0", 7), kHash));
  std::string u, p;
  ASSERT_TRUE(parse_basic_authorization(basic("prometheus", "a:b"), u, p));
  EXPECT_EQ(u, "prometheus");
  EXPECT_EQ(p, "a:b");
  EXPECT_FALSE(parse_basic_authorization("Bearer xyz", u, p));
  EXPECT_FALSE(parse_basic_authorization("Basic !!!!", u, p));
  BasicAuth auth(std::map<std::string, std::string>{{"prometheus", kHash}});
  EXPECT_EQ(auth.verify(""), AuthResult::kMissing);
  EXPECT_EQ(auth.verify(basic("nobody", "s3cret")), AuthResult::kUnknownUser);
  EXPECT_EQ(auth.verify(basic("prometheus", "wrong")), AuthResult::kWrongPassword);
  EXPECT_FALSE(auth.cached(basic("prometheus", "wrong")));
  EXPECT_EQ(auth.verify(basic("prometheus", "s3cret")), AuthResult::kOk);
  EXPECT_TRUE(auth.cached(basic("prometheus", "s3cret")));
  EXPECT_EQ(auth.verify(basic("prometheus", std::string("s3cret\0junk", 11))),
            AuthResult::kWrongPassword);
  // A failure right after a success is still a failure.
  EXPECT_EQ(auth.verify(basic("prometheus", "s3cre")), AuthResult::kWrongPassword);
}

TEST_F(HttpTest, SecretFilesStripOneNewlineAndRefuseOddFiles) {
  std::string out;
  ASSERT_TRUE(read_secret_file(write("pw", "hunter2\n"), out));
  EXPECT_EQ(out, "hunter2");
  EXPECT_FALSE(read_secret_file(write("empty", "\n"), out));
  EXPECT_FALSE(read_secret_file((dir_ / "absent").string(), out));
  EXPECT_FALSE(read_secret_file(dir_.string(), out));
  EXPECT_FALSE(read_secret_file("/dev/zero", out));
}

TEST_F(HttpTest, ServesMetricsAndCountsBadAuth) {
  prometheus::Registry self;
  auto served = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("demo_things_total")
      .Help("x")
      .Register(*served)
      .Add({})
      .Increment(3);
  MetricsServerOptions o;
  o.web.basic_auth_users = {{"prometheus", kHash}};
  MetricsServer server(o, self);
  server.add(served);
  ASSERT_TRUE(server.start());
  std::string body;
  EXPECT_EQ(get(server.port(), "/metrics", "", &body), 401u);
  EXPECT_EQ(body.find("demo_things_total"), std::string::npos);
  EXPECT_EQ(get(server.port(), "/metrics", basic("prometheus", "nope")), 401u);
  EXPECT_EQ(get(server.port(), "/metrics", basic("mallory", "s3cret")), 401u);
  EXPECT_EQ(get(server.port(), "/metrics", basic("prometheus", "s3cret"), &body), 200u);
  EXPECT_NE(body.find("demo_things_total 3"), std::string::npos) << body;
  EXPECT_EQ(get(server.port(), "/-/healthy", basic("prometheus", "s3cret")), 200u);
  EXPECT_EQ(get(server.port(), "/other", basic("prometheus", "s3cret")), 404u);
  EXPECT_EQ(value(self, "citywatch_http_auth_failures_total", "missing"), 1);
  EXPECT_EQ(value(self, "citywatch_http_auth_failures_total", "wrong_password"), 1);
  EXPECT_EQ(value(self, "citywatch_http_auth_failures_total", "unknown_user"), 1);
  EXPECT_EQ(value(self, "citywatch_http_requests_total", "401"), 3);
  EXPECT_EQ(value(self, "citywatch_http_requests_total", "200"), 2);
}

TEST_F(HttpTest, RequiredClientCertificateIsEnforced) {
  make_certs();
  prometheus::Registry self;
  MetricsServerOptions o;
  TlsServerConfig tls;
  tls.cert_file = (dir_ / "server.pem").string();
  tls.key_file = (dir_ / "server.key").string();
  tls.client_ca_file = (dir_ / "ca.pem").string();
  tls.client_auth = ClientAuth::kRequireAndVerifyClientCert;
  o.web.tls = tls;
  MetricsServer server(o, self);
  server.add(std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.start());
  EXPECT_EQ(server.url().rfind("https://", 0), 0u);
  const std::string ca = (dir_ / "ca.pem").string();
  EXPECT_EQ(get_tls(server.port(), ca, "", ""), 0u);
  EXPECT_EQ(get(server.port(), "/metrics", ""), 0u) << "plain HTTP on a TLS port";
  EXPECT_EQ(
      get_tls(server.port(), ca, (dir_ / "client.pem").string(), (dir_ / "client.key").string()),
      200u);
  server.stop();  // the handshake failures are counted by the server thread
  EXPECT_GE(value(self, "citywatch_http_tls_handshake_failures_total"), 2);
  EXPECT_EQ(value(self, "citywatch_http_requests_total", "200"), 1);
}

TEST_F(HttpTest, StalledClientsDoNotStarveAScrape) {
  prometheus::Registry self;
  MetricsServerOptions o;
  o.max_connections = 8;
  MetricsServer server(o, self);
  server.add(std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.start());
  // 20 connections that send half a request line and then nothing: more than the cap.
  asio::io_context io;
  std::vector<tcp::socket> stalled;
  for (int i = 0; i < 20; ++i) {
    tcp::socket& s = stalled.emplace_back(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    asio::write(s, asio::buffer(std::string("GET /metr")));
  }
  std::string body;
  EXPECT_EQ(get(server.port(), "/metrics", "", &body), 200u);
  EXPECT_GE(value(self, "citywatch_http_connections_evicted_total"), 13);
}

TEST_F(HttpTest, OversizedHeadersAndBodiesAreRefused) {
  prometheus::Registry self;
  MetricsServer server(MetricsServerOptions{}, self);
  server.add(std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.start());
  EXPECT_EQ(get(server.port(), "/metrics", "Basic " + std::string(20000, 'A')), 431u);
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
  asio::write(s, asio::buffer(std::string("POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                          "Content-Length: 5\r\n\r\nhello")));
  std::string reply(12, '\0');
  asio::read(s, asio::buffer(reply));
  EXPECT_EQ(reply, "HTTP/1.1 405");
  tcp::socket big(io);
  big.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
  asio::write(big, asio::buffer(std::string("POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                            "Content-Length: 100000\r\n\r\n")));
  asio::read(big, asio::buffer(reply));
  EXPECT_EQ(reply, "HTTP/1.1 413");
}

}  // namespace
}  // namespace citywatch::http
