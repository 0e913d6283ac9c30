// IngestServer: the collector's mutual-TLS listener for agents.
//
// One session per agent connection, each a coroutine on the server's io_context: TLS
// handshake (a client certificate signed by the city's CA is required; agents not on the
// allow list, when one is set, are refused), HELLO (the agent id must equal the certificate's
// CN), then BATCH frames. Each batch is decoded, checked against the ledger for duplicates,
// committed, applied to the metrics, and only then acked. Malformed frames are counted by
// reason and end the session; nothing an agent sends can crash the collector.
//
// The TLS listener is one way in: serve() runs the same session on any authenticated
// ByteStream (unit tests drive it over an in-memory pipe).
//
// Thread-safety: everything runs on the one io_context thread that owns the ledger.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "collector/ingest/ledger.h"
#include "collector/metrics/collector_metrics.h"
#include "collector/records/record_consumer.h"
#include "common/status.h"

namespace citywatch {
class ByteStream;  // common/transport/byte_stream.h: coroutines, kept out of this header
}  // namespace citywatch

namespace citywatch::collector {

struct IngestOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7443;
  std::set<std::string> allowed_agents;  // empty: any certificate the CA signed
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);
  // After the handshake, HELLO must arrive within this; once a frame's header arrived, its
  // payload must too. Between frames an agent may be idle (TCP keepalive finds dead peers).
  std::chrono::nanoseconds frame_timeout = std::chrono::seconds(30);
  // Sessions one agent id may hold at once (a reconnect overlaps the old session briefly);
  // more are refused (too_many_sessions).
  std::size_t max_sessions_per_agent = 4;
  // Fault injection for tests: after this many commits, exit at once without acking (as a
  // crash between commit and ack would). 0 = never.
  std::uint64_t fault_exit_after_commits = 0;
};

class IngestServer {
 public:
  IngestServer(boost::asio::io_context& io, boost::asio::ssl::context& tls, IngestLedger& ledger,
               CollectorMetrics& metrics, IngestOptions options);

  // Binds and starts accepting. The bound port (useful when port 0 asked for any) follows.
  Status start();
  std::uint16_t port() const { return bound_port_; }
  // Stops accepting and closes every session's socket. The sessions end once their pending
  // handlers run: call drain() before the server and its consumers are destroyed.
  void stop();
  // Runs the io_context's ready handlers until every session has ended (bounded). After
  // io_context::stop(), sessions suspended in I/O would otherwise be destroyed only with the
  // io_context, after the server they report to.
  void drain();

  // Runs a session on a stream whose peer is already authenticated as `agent` (the identity
  // a certificate's CN gives an accepted TLS connection); the allow list and the session
  // limit still apply. The session belongs to the server like an accepted one.
  void serve(std::unique_ptr<ByteStream> stream, std::string agent);

  // Components fed with every accepted record; not owned, must outlive the server.
  void add_consumer(RecordConsumer* consumer) { consumers_.push_back(consumer); }

 private:
  class Session;
  void accept_next();
  void spawn(std::shared_ptr<Session> session);

  boost::asio::io_context& io_;
  boost::asio::ssl::context& tls_;
  IngestLedger& ledger_;
  CollectorMetrics& metrics_;
  IngestOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t bound_port_ = 0;
  std::uint64_t commits_ = 0;
  std::vector<RecordConsumer*> consumers_;
  std::vector<std::weak_ptr<Session>> sessions_;
  std::map<std::string, std::size_t> sessions_per_agent_;
  // Accept errors (EMFILE, ENFILE, ENOBUFS...) back off instead of spinning on them.
  boost::asio::steady_timer accept_backoff_;
  std::chrono::milliseconds accept_delay_{0};
};

}  // namespace citywatch::collector
