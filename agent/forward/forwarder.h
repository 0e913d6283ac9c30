// Forwarder: ships spooled batches to a collector over mutual TLS and deletes them from the
// spool only when the collector has acked them.
//
// It keeps one session at a time: connect (with a timeout), TLS handshake (the collector's
// certificate must be signed by the CA and name the configured server), HELLO, then the
// collector's HELLO_ACK says which sequence it already holds durably; everything after it is
// streamed from the spool with up to max_in_flight batches unacked. A lost session is retried
// with exponential backoff and full jitter; after a failed attempt the next configured
// collector is tried (fail-over). Exactly-once holds per collector: each keeps its own
// ledger, so a batch one collector committed but did not ack is counted again by the next. Nothing
// is lost while the collector is away: batches wait in the spool until its size limit.
//
// The forwarder speaks the wire protocol over a ClientStream (common/transport/byte_stream.h):
// mutual TLS in production, an in-memory pipe in unit tests.
//
// Thread-safety: none. Everything runs on the agent's single io_context thread, which also
// owns the spool.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/spool/spool.h"
#include "common/wire_codec.h"

namespace citywatch {
class ClientStream;  // common/transport/byte_stream.h: coroutines, kept out of this header
}  // namespace citywatch

namespace citywatch::agent {

// Makes a new, unconnected stream for each connection attempt (as ClientStreamFactory).
using StreamFactory = std::function<std::unique_ptr<ClientStream>()>;

struct CollectorEndpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string server_name;  // expected in the collector's certificate; default: host

  bool operator==(const CollectorEndpoint&) const = default;
};

struct ForwarderOptions {
  std::vector<CollectorEndpoint> collectors;
  wire::Hello hello;
  std::chrono::nanoseconds initial_backoff = std::chrono::milliseconds(500);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(30);
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(10);
  std::size_t max_in_flight = 32;
  // Group commit: a batch is sent only once the spool is synced, and one sync covers every
  // batch appended before it; syncs are at most one per this interval (0: one per batch
  // found unsynced), which is the most a batch waits for it.
  std::chrono::nanoseconds group_commit = std::chrono::milliseconds(20);
  // Offer zstd batches (batch.compression: zstd); used only if the collector accepts.
  bool compress = false;
};

struct ForwarderStats {
  std::uint64_t connect_attempts = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t sessions = 0;
  std::uint64_t batches_sent = 0;
  std::uint64_t bytes_sent = 0;   // frame bytes on the wire
  std::uint64_t batch_bytes = 0;  // the batches' payload bytes before compression
  std::uint64_t acks = 0;
  std::uint64_t refusals = 0;  // ERROR frames from the collector
  // Compact batches re-encoded fixed for a collector that does not read compact ones.
  std::uint64_t batches_reencoded = 0;
  // Packed batches unpacked for a collector that does not read packed ones.
  std::uint64_t batches_unpacked = 0;
  bool connected = false;
};

class Forwarder {
 public:
  // Over mutual TLS with `tls` (which must outlive the forwarder).
  Forwarder(boost::asio::io_context& io, boost::asio::ssl::context& tls, Spool& spool,
            ForwarderOptions options);
  // Over whatever streams `streams` makes (one per connection attempt).
  Forwarder(boost::asio::io_context& io, StreamFactory streams, Spool& spool,
            ForwarderOptions options);
  ~Forwarder();

  void start();
  // A new batch is in the spool.
  void notify();
  void stop();

  // True when every spooled batch has been acked.
  bool drained() const { return spool_.acked_seq() >= spool_.last_seq(); }
  // Called (once per transition) when the spool becomes drained.
  void on_drained(std::function<void()> fn) { on_drained_ = std::move(fn); }
  // The collector's last known sequence exceeds the spool's: the agent lost its state.
  // Called with that sequence so the batcher can continue above it.
  void on_collector_ahead(std::function<void(std::uint64_t)> fn) { on_ahead_ = std::move(fn); }
  // Called each time a batch is taken from the spool to be sent.
  void on_taken(std::function<void()> fn) { on_taken_ = std::move(fn); }

  const ForwarderStats& stats() const { return stats_; }

 private:
  struct Shared;
  void schedule_reconnect();
  void connect();

  boost::asio::io_context& io_;
  StreamFactory streams_;
  Spool& spool_;
  ForwarderOptions options_;
  ForwarderStats stats_;
  std::shared_ptr<Shared> session_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::nanoseconds backoff_;
  std::size_t collector_index_ = 0;
  std::uint64_t synced_upto_ = 0;
  std::chrono::steady_clock::time_point last_sync_{};
  std::mt19937_64 rng_;
  bool stopped_ = false;
  std::function<void()> on_drained_;
  std::function<void(std::uint64_t)> on_ahead_;
  std::function<void()> on_taken_;
};

}  // namespace citywatch::agent
