#include "collector/ingest/ingest_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <memory>
#include <string_view>
#include <vector>

#include "common/batch_compression.h"
#include "common/log.h"
#include "common/task_exit.h"
#include "common/transport/byte_stream.h"
#include "common/transport/tls_stream.h"
#include "common/wire_codec.h"

namespace citywatch::collector {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Names a failed handshake for the connections_rejected metric and the log.
const char* handshake_reason(const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return "no_client_certificate";
      case SSL_R_CERTIFICATE_VERIFY_FAILED:
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        return "certificate_verify_failed";
      default:
        break;
    }
  }
  return "tls_handshake";
}

// Segment names become label values and log text: the same alphabet as agent ids.
bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

}  // namespace

class IngestServer::Session : public std::enable_shared_from_this<Session> {
 public:
  // `tls` is `stream` itself when it still needs its handshake (an accepted socket), null
  // when the stream arrives authenticated as `agent`.
  Session(IngestServer& server, std::unique_ptr<ByteStream> stream, TlsStream* tls,
          std::string agent)
      : server_(server),
        stream_(std::move(stream)),
        tls_(tls),
        timer_(server.io_),
        agent_(std::move(agent)) {}

  awaitable<void> run() {
    auto self = shared_from_this();
    peer_ = stream_->peer();
    if (tls_) {
      boost::system::error_code ec;
      // A peer that connects and never completes the handshake is cut off.
      timer_.expires_after(server_.options_.handshake_timeout);
      timer_.async_wait([self](boost::system::error_code e) {
        if (!e) self->close();
      });
      co_await tls_->accept_handshake(ec);
      timer_.cancel();
      if (ec) {
        const char* reason = handshake_reason(ec);
        server_.metrics_.on_connection_rejected(reason);
        log::warning("ingest: refused " + peer_ + ": " + reason + " (" + ec.message() + ")");
        co_return;
      }
      agent_ = tls_->peer_common_name();
    }
    if (agent_.empty() || agent_.size() > ShortName::kCapacity ||
        (!server_.options_.allowed_agents.empty() &&
         !server_.options_.allowed_agents.count(agent_))) {
      server_.metrics_.on_connection_rejected("unknown_agent");
      log::warning("ingest: refused " + peer_ + ": certificate CN '" + agent_ +
                   "' is not an allowed agent");
      co_await send_error(wire::ErrorCode::kUnknownAgent, "agent not allowed");
      co_return;
    }

    // One agent id holds a bounded number of sessions: a stolen or cloned certificate
    // cannot open thousands.
    if (server_.sessions_per_agent_[agent_] >= server_.options_.max_sessions_per_agent) {
      server_.metrics_.on_connection_rejected("too_many_sessions");
      log::warning("ingest: refused " + peer_ + " (" + agent_ + "): already " +
                   std::to_string(server_.sessions_per_agent_[agent_]) + " sessions");
      co_await send_error(wire::ErrorCode::kProtocol, "too many sessions for this agent");
      co_return;
    }
    ++server_.sessions_per_agent_[agent_];
    counted_ = true;

    // HELLO comes at once after the handshake, or the session is dropped.
    wire::FrameHeader header;
    if (!co_await read_frame(header, /*deadline_from_start=*/true)) {
      server_.metrics_.on_connection_rejected(timed_out_ ? "hello_timeout" : "protocol");
      if (timed_out_)
        log::warning("ingest: dropped " + peer_ + " (" + agent_ + "): no HELLO in time");
      co_return;
    }
    wire::Hello hello;
    const std::uint16_t hello_flags = header.flags;
    if (header.type != wire::FrameType::kHello) {
      reject("unexpected_frame", "first frame is not HELLO");
      server_.metrics_.on_connection_rejected("protocol");
      co_return;
    }
    if (auto e = wire::decode_hello(payload_, hello); e != wire::DecodeError::kOk) {
      reject(wire::to_string(e), "bad HELLO");
      server_.metrics_.on_connection_rejected("protocol");
      co_return;
    }
    if (!valid_name(hello.segment.view())) {
      server_.metrics_.on_connection_rejected("protocol");
      log::warning("ingest: refused " + peer_ + " (" + agent_ + "): segment name '" +
                   std::string(hello.segment.view()) + "' is not letters, digits, '.', '_', '-'");
      co_await send_error(wire::ErrorCode::kProtocol, "bad segment name");
      co_return;
    }
    if (hello.agent_id.view() != agent_) {
      server_.metrics_.on_connection_rejected("agent_id_mismatch");
      log::warning("ingest: refused " + peer_ + ": HELLO says agent '" +
                   std::string(hello.agent_id.view()) + "' but its certificate is for '" + agent_ +
                   "'");
      co_await send_error(wire::ErrorCode::kAgentIdMismatch, "agent id differs from certificate");
      co_return;
    }
    segment_ = std::string(hello.segment.view());
    stream_id_ = hello.stream_id;
    agent_name_.assign(agent_);
    segment_name_.assign(segment_);
    server_.metrics_.on_agent_connected(agent_, now_seconds());
    connected_ = true;
    for (RecordConsumer* c : server_.consumers_)
      c->on_agent_session(agent_, segment_, true, now_ns());
    log::info("ingest: agent '" + agent_ + "' (segment '" + segment_ + "', " +
              std::string(hello.software.view()) + ") connected from " + peer_);

    // A collector pair shares positions: another collector may have moved this one.
    if (auto s = server_.ledger_.refresh(agent_); !s) {
      server_.metrics_.on_ledger_error();
      log::error("ingest: " + s.message() + "; closing the session of '" + agent_ + "'");
      co_return;
    }
    const std::uint64_t last = server_.ledger_.last_seq(agent_, stream_id_);
    // The agent offers zstd, compact or packed batches: accepted (docs/wire-protocol.md,
    // "Compression", "Compact records" and "Packed batches").
    const std::uint16_t accept =
        hello_flags & (wire::kFlagZstd | wire::kFlagCompact | wire::kFlagLz4);
    if (!co_await send_sequence(wire::FrameType::kHelloAck, last, accept)) co_return;

    while (co_await read_frame(header)) {
      if (header.type != wire::FrameType::kBatch) {
        reject("unexpected_frame", "expected BATCH");
        break;
      }
      std::uint64_t ack = 0;
      if ((header.flags & wire::kFlagZstd) && !unpack()) break;
      if ((header.flags & wire::kFlagLz4) && !unpack_lz4()) break;
      if (!handle_batch(ack)) break;
      if (!co_await send_sequence(wire::FrameType::kAck, ack)) break;
    }
  }

  void close() { stream_->close(); }

  ~Session() {
    if (counted_ && --server_.sessions_per_agent_[agent_] == 0)
      server_.sessions_per_agent_.erase(agent_);
    if (connected_) {
      server_.metrics_.on_agent_disconnected();
      for (RecordConsumer* c : server_.consumers_)
        c->on_agent_session(agent_, segment_, false, now_ns());
      log::info("ingest: agent '" + agent_ + "' disconnected");
    }
  }

 private:
  void reject(const char* reason, const std::string& what) {
    server_.metrics_.on_frame_rejected(reason);
    log::warning("ingest: " + peer_ + (agent_.empty() ? "" : " (" + agent_ + ")") + ": " + what +
                 ": " + reason + "; closing the session");
  }

  // Arms the frame deadline: the socket is closed (and the pending read fails) at expiry.
  void arm_deadline() {
    timer_.expires_after(server_.options_.frame_timeout);
    std::weak_ptr<Session> weak = shared_from_this();
    timer_.async_wait([weak](boost::system::error_code e) {
      if (e) return;
      if (auto self = weak.lock()) {
        self->timed_out_ = true;
        self->close();
      }
    });
  }

  // Reads one whole frame into header/payload_. False on I/O error, a deadline missed or a
  // frame refused. The deadline runs from the call (HELLO) or from the frame's header (a
  // batch: an agent may be idle between batches). The payload is read in chunks and memory
  // grows as bytes arrive, never to what a header merely declares.
  awaitable<bool> read_frame(wire::FrameHeader& header, bool deadline_from_start = false) {
    boost::system::error_code ec;
    std::array<std::byte, wire::kHeaderSize> head;
    if (deadline_from_start) arm_deadline();
    if (!co_await read_exactly(*stream_, head, ec)) {
      timer_.cancel();
      co_return false;  // peer gone (or its deadline passed); not a protocol error
    }
    if (auto e = wire::decode_header(head, header); e != wire::DecodeError::kOk) {
      timer_.cancel();
      reject(wire::to_string(e), "bad frame header");
      co_return false;
    }
    if (!deadline_from_start) arm_deadline();
    constexpr std::size_t kChunk = 64 * 1024;
    payload_.clear();
    while (payload_.size() < header.length) {
      const std::size_t have = payload_.size();
      const std::size_t n = std::min<std::size_t>(kChunk, header.length - have);
      payload_.resize(have + n);
      if (!co_await read_exactly(*stream_, std::span(payload_).subspan(have, n), ec)) break;
    }
    timer_.cancel();
    if (ec) co_return false;
    if (payload_.capacity() > 4 * kChunk && header.length <= kChunk) payload_.shrink_to_fit();
    if (auto e = wire::verify_payload(header, payload_); e != wire::DecodeError::kOk) {
      reject(wire::to_string(e), "bad frame payload");
      co_return false;
    }
    if (connected_) server_.metrics_.on_agent_seen(agent_, now_seconds());
    co_return true;
  }

  // A zstd BATCH: payload_ becomes the batch it holds, bounded by the frame limit. A frame
  // that does not decompress (its checksum matched: a bug or version skew) cannot even name
  // its sequence, so it cannot be committed empty: the session is closed and counted.
  bool unpack() {
    if (!unzstd_) unzstd_ = std::make_unique<wire::BatchDecompressor>();
    if (auto e = unzstd_->decompress(payload_, unpacked_, wire::kMaxPayload);
        e != wire::DecompressError::kOk) {
      reject(wire::to_string(e), "compressed batch refused");
      return false;
    }
    payload_.swap(unpacked_);
    if (unpacked_.capacity() > 4 * 64 * 1024) unpacked_ = {};
    return true;
  }

  // A packed BATCH: payload_ becomes the batch it holds, bounded and refused as unpack().
  bool unpack_lz4() {
    if (auto e = wire::unpack(payload_, unpacked_, wire::kMaxPayload);
        e != wire::DecompressError::kOk) {
      reject(wire::to_string(e), "packed batch refused");
      return false;
    }
    payload_.swap(unpacked_);
    if (unpacked_.capacity() > 4 * 64 * 1024) unpacked_ = {};
    return true;
  }

  // Decodes, de-duplicates and commits one batch; ack is the sequence to acknowledge.
  bool handle_batch(std::uint64_t& ack) {
    const bool done = decode_and_commit(ack);
    // Decoded records can weigh 40 times their bytes (an SNMP trap: 664 bytes from 15 on
    // the wire; wire::kMaxDecodedBytes bounds a batch): what a batch took beyond an
    // agent's regular batches is given back now, not held while the session lasts.
    if (batch_.capacity_bytes() > kKeptBatchBytes) batch_ = RecordBatch{};
    if (payload_.capacity() > kKeptPayloadBytes) payload_ = {};
    return done;
  }

  // A 100,000-flow batch (an agent's largest) decoded; a 1 MiB batch's payload, four times.
  static constexpr std::size_t kKeptBatchBytes = std::size_t{16} << 20;
  static constexpr std::size_t kKeptPayloadBytes = std::size_t{4} << 20;

  bool decode_and_commit(std::uint64_t& ack) {
    std::uint64_t seq = 0;
    if (wire::peek_batch_sequence(payload_, seq) != wire::DecodeError::kOk) {
      reject("truncated", "batch too short");
      return false;
    }
    const std::uint64_t last = server_.ledger_.last_seq(agent_, stream_id_);
    if (seq <= last) {
      // Sent again after a reconnect: already counted; ack so the agent can delete it.
      server_.metrics_.on_duplicate_batch(agent_);
      ack = last;
      return true;
    }
    batch_.reset(agent_name_, segment_name_);
    std::uint32_t unknown = 0;
    summary_.clear();
    summary_.agent = agent_;
    summary_.segment = segment_;
    summary_.stream = stream_id_;
    summary_.seq = seq;
    const auto e = wire::decode_batch(payload_, seq, batch_, unknown);
    if (e != wire::DecodeError::kOk) {
      // The checksum matched, so this is what the agent meant to send: a bug or a version
      // skew, not line noise. Count it and commit the sequence empty, so the agent does not
      // resend a batch that can never be read.
      server_.metrics_.on_frame_rejected(wire::to_string(e));
      log::warning("ingest: agent '" + agent_ + "' batch " + std::to_string(seq) +
                   " cannot be decoded (" + wire::to_string(e) + "); dropped and counted");
    }
    for (const RecordRef r : batch_) summary_.add(r);
    bool duplicate = false;
    const auto commit_start = std::chrono::steady_clock::now();
    const Status committed =
        server_.ledger_.commit(summary_, flow_rows_, interface_rows_, duplicate);
    server_.metrics_.on_ledger_commit(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_start).count());
    if (auto s = committed; !s) {
      server_.metrics_.on_ledger_error();
      log::error("ingest: " + s.message() + "; closing session without ack");
      return false;
    }
    if (duplicate) {
      // Another collector of the pair committed it first (this session outlived its agent's
      // move): counted there, acked here so the agent can delete it.
      server_.metrics_.on_duplicate_batch(agent_);
      ack = server_.ledger_.last_seq(agent_, stream_id_);
      return true;
    }
    if (server_.options_.fault_exit_after_commits &&
        ++server_.commits_ >= server_.options_.fault_exit_after_commits) {
      log::error("ingest: fault injection: exiting after commit, before ack");
      _exit(70);
    }
    server_.metrics_.apply_batch(summary_, flow_rows_, interface_rows_);
    for (RecordConsumer* c : server_.consumers_) c->consume(batch_);
    if (unknown) server_.metrics_.on_unknown_records(agent_, unknown);
    ack = seq;
    return true;
  }

  awaitable<bool> send_sequence(wire::FrameType type, std::uint64_t seq, std::uint16_t flags = 0) {
    out_payload_.clear();
    wire::encode_sequence(seq, out_payload_);
    co_return co_await send(type, flags);
  }

  awaitable<void> send_error(wire::ErrorCode code, const std::string& text) {
    out_payload_.clear();
    wire::encode_error(code, text, out_payload_);
    co_await send(wire::FrameType::kError);
  }

  awaitable<bool> send(wire::FrameType type, std::uint16_t flags = 0) {
    out_.clear();
    wire::encode_frame(type, out_payload_, out_, flags);
    boost::system::error_code ec;
    co_return co_await write_all(*stream_, out_, ec);
  }

  IngestServer& server_;
  std::unique_ptr<ByteStream> stream_;
  TlsStream* tls_;
  asio::steady_timer timer_;
  std::string peer_;
  std::string agent_;
  std::string segment_;
  std::uint64_t stream_id_ = 0;
  std::unique_ptr<wire::BatchDecompressor> unzstd_;  // made at the first zstd batch
  std::vector<std::byte> unpacked_;
  ShortName agent_name_;
  ShortName segment_name_;
  bool connected_ = false;
  bool counted_ = false;    // in server_.sessions_per_agent_
  bool timed_out_ = false;  // the frame deadline closed the socket
  std::vector<std::byte> payload_;
  std::vector<std::byte> out_payload_;
  std::vector<std::byte> out_;
  RecordBatch batch_;
  BatchSummary summary_;
  std::vector<FlowRow> flow_rows_;
  std::vector<InterfaceRow> interface_rows_;
};

IngestServer::IngestServer(asio::io_context& io, asio::ssl::context& tls, IngestLedger& ledger,
                           CollectorMetrics& metrics, IngestOptions options)
    : io_(io),
      tls_(tls),
      ledger_(ledger),
      metrics_(metrics),
      options_(std::move(options)),
      acceptor_(io),
      accept_backoff_(io) {}

Status IngestServer::start() {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(options_.host, ec);
  if (ec) return Status::error("ingest: '" + options_.host + "' is not an IP address");
  const tcp::endpoint ep(addr, options_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::error("ingest: cannot listen on " + options_.host + ":" +
                         std::to_string(options_.port) + ": " + ec.message());
  bound_port_ = acceptor_.local_endpoint().port();
  accept_next();
  return Status::ok();
}

void IngestServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_backoff_.cancel();
  for (auto& weak : sessions_)
    if (auto s = weak.lock()) s->close();
}

void IngestServer::drain() {
  stop();
  auto live = [this] {
    std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
    return !sessions_.empty();
  };
  io_.restart();
  // Each round lets the closed sessions' coroutines take their next step; a few suffice.
  for (int round = 0; round < 1000 && live(); ++round) io_.poll();
  io_.stop();
}

void IngestServer::serve(std::unique_ptr<ByteStream> stream, std::string agent) {
  spawn(std::make_shared<Session>(*this, std::move(stream), nullptr, std::move(agent)));
}

void IngestServer::spawn(std::shared_ptr<Session> session) {
  std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
  sessions_.push_back(session);
  asio::co_spawn(
      io_, [session]() { return session->run(); }, TaskExit("ingest session", TaskExit::kLogged));
}

void IngestServer::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (EMFILE/ENFILE) or memory: accepting again at once would spin a
      // core on the same error. Back off, doubling to a second, and say so.
      accept_delay_ = std::min(std::chrono::milliseconds(1000),
                               std::max(std::chrono::milliseconds(50), accept_delay_ * 2));
      metrics_.on_connection_rejected("accept_error");
      log::error("ingest: accept failed: " + ec.message() + "; retrying in " +
                 std::to_string(accept_delay_.count()) + " ms");
      accept_backoff_.expires_after(accept_delay_);
      accept_backoff_.async_wait([this](boost::system::error_code e) {
        if (!e) accept_next();
      });
      return;
    }
    accept_delay_ = std::chrono::milliseconds(0);
    {
      socket.set_option(asio::socket_base::keep_alive(true), ec);
      socket.set_option(tcp::no_delay(true), ec);
      auto stream = std::make_unique<TlsStream>(std::move(socket), tls_);
      TlsStream* tls = stream.get();
      spawn(std::make_shared<Session>(*this, std::move(stream), tls, std::string()));
    }
    accept_next();
  });
}

}  // namespace citywatch::collector
