#include "agent/forward/forwarder.h"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/batch_compression.h"
#include "common/byte_io.h"
#include "common/log.h"
#include "common/task_exit.h"
#include "common/transport/byte_stream.h"
#include "common/transport/tls_stream.h"

namespace citywatch::agent {

namespace asio = boost::asio;
using asio::awaitable;

// One TLS session's state. Shared by the writer coroutine, the reader coroutine and the
// forwarder (which only pokes `wake` and `stream`), so whichever ends last frees it.
struct Forwarder::Shared {
  Shared(asio::io_context& io, std::unique_ptr<ClientStream> s)
      : stream(std::move(s)), wake(io), deadline(io) {}
  std::unique_ptr<ClientStream> stream;
  asio::steady_timer wake;              // cancelled to wake the writer (new batch, ack, end)
  asio::steady_timer deadline;          // connect/handshake timeout
  std::deque<std::uint64_t> in_flight;  // sent, not yet acked, in order
  bool closed = false;
  std::string peer;
  // Batches go out as zstd frames: the agent offered it and the collector accepted.
  std::unique_ptr<wire::BatchCompressor> zstd;
  // The collector does not read compact batches: they go out re-encoded fixed.
  bool fixed_only = false;
  // The collector reads packed (lz4) batches: spooled packed, they go out as they are.
  bool packed = false;

  void close() {
    if (closed) return;
    closed = true;
    stream->close();
    wake.cancel();
    deadline.cancel();
  }
};

namespace {

// Waits on a timer used as a signal: returns when it is cancelled or expires.
awaitable<void> wait_for(asio::steady_timer& t, std::chrono::nanoseconds d) {
  boost::system::error_code ec;
  t.expires_after(d);
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// The collector sends only HELLO_ACK, ACK and ERROR frames, all small: a header announcing
// more is not a collector speaking this protocol.
constexpr std::uint32_t kMaxCollectorFrame = 4096;
// A BATCH frame's header and the payload bytes sent with it: 16 KiB, TLS's largest record.
constexpr std::size_t kFrameHead = std::size_t{16384} - wire::kHeaderSize;

// Reads one frame; false on I/O error or a frame that does not verify.
awaitable<bool> read_frame(ByteStream& s, wire::FrameHeader& h, std::vector<std::byte>& payload) {
  boost::system::error_code ec;
  std::array<std::byte, wire::kHeaderSize> head;
  if (!co_await read_exactly(s, head, ec) ||
      wire::decode_header(head, h) != wire::DecodeError::kOk || h.length > kMaxCollectorFrame)
    co_return false;
  payload.resize(h.length);
  co_return co_await read_exactly(s, payload, ec) &&
      wire::verify_payload(h, payload) == wire::DecodeError::kOk;
}

std::string error_text(std::span<const std::byte> payload) {
  ByteReader r(payload);
  const std::uint16_t code = r.u16();
  const std::uint8_t len = r.u8();
  std::string text(len, '\0');
  r.bytes(text.data(), len);
  return r.ok() ? "code " + std::to_string(code) + ": " + text : "malformed ERROR frame";
}

}  // namespace

Forwarder::Forwarder(asio::io_context& io, asio::ssl::context& tls, Spool& spool,
                     ForwarderOptions options)
    : Forwarder(io, tls_stream_factory(io, tls), spool, std::move(options)) {}

Forwarder::Forwarder(asio::io_context& io, StreamFactory streams, Spool& spool,
                     ForwarderOptions options)
    : io_(io),
      streams_(std::move(streams)),
      spool_(spool),
      options_(std::move(options)),
      retry_timer_(io),
      backoff_(options_.initial_backoff),
      rng_(std::random_device{}()) {}

Forwarder::~Forwarder() { stop(); }

void Forwarder::start() { connect(); }

void Forwarder::notify() {
  if (session_) session_->wake.cancel();
}

void Forwarder::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  if (session_) session_->close();
}

void Forwarder::schedule_reconnect() {
  if (stopped_) return;
  // Jitter (a uniform wait between half the backoff and all of it) keeps a fleet of agents
  // from reconnecting in lock-step when a collector comes back.
  std::uniform_int_distribution<std::int64_t> dist(backoff_.count() / 2, backoff_.count());
  const auto wait = std::chrono::nanoseconds(dist(rng_));
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  retry_timer_.expires_after(wait);
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) connect();
  });
}

void Forwarder::connect() {
  if (options_.collectors.empty()) return;
  const CollectorEndpoint ep = options_.collectors[collector_index_ % options_.collectors.size()];
  auto s = std::make_shared<Shared>(io_, streams_());
  session_ = s;
  s->peer = ep.host + ":" + std::to_string(ep.port);
  ++stats_.connect_attempts;

  asio::co_spawn(
      io_,
      [this, s, ep]() -> awaitable<void> {
        boost::system::error_code ec;
        bool established = false;
        const char* failure = "connect";
        // One deadline covers resolve, connect, handshake and HELLO: a black-holed collector
        // costs connect_timeout, not the kernel's minutes.
        s->deadline.expires_after(options_.connect_timeout);
        s->deadline.async_wait([s](boost::system::error_code e) {
          if (!e) s->close();
        });
        // Named, not a temporary: GCC 12 mishandles aggregate temporaries in co_await.
        const ConnectTarget target{ep.host, ep.port, ep.server_name};
        co_await s->stream->connect(target, ec, failure);
        std::vector<std::byte> payload, frame, packed, fixed, unpacked;
        wire::FrameHeader h;
        if (!ec) {
          failure = "HELLO";
          wire::encode_hello(options_.hello, payload);
          wire::encode_frame(
              wire::FrameType::kHello, payload, frame,
              wire::kFlagCompact | wire::kFlagLz4 | (options_.compress ? wire::kFlagZstd : 0));
          co_await write_all(*s->stream, frame, ec);
        }
        std::uint64_t collector_has = 0;
        if (!ec && co_await read_frame(*s->stream, h, payload)) {
          if (h.type == wire::FrameType::kHelloAck &&
              wire::decode_sequence(payload, collector_has) == wire::DecodeError::kOk) {
            established = true;
            // A collector that does not read zstd leaves the flag clear: batches go plain.
            if (options_.compress && (h.flags & wire::kFlagZstd))
              s->zstd = std::make_unique<wire::BatchCompressor>();
            // An older collector does not read compact batches (docs/wire-protocol.md).
            s->fixed_only = (h.flags & wire::kFlagCompact) == 0;
            s->packed = (h.flags & wire::kFlagLz4) != 0;
          } else if (h.type == wire::FrameType::kError) {
            ++stats_.refusals;
            failure = "collector refused the agent";
            log::error("forward: " + s->peer + " refused this agent: " + error_text(payload));
          }
        }
        s->deadline.cancel();

        if (!established) {
          ++stats_.connect_failures;
          if (!s->closed)
            log::warning("forward: " + s->peer + ": " + failure + " failed" +
                         (ec ? ": " + ec.message() : ""));
          else
            log::warning("forward: " + s->peer + ": " + failure + " timed out or was closed");
          s->close();
          if (session_ == s) session_.reset();
          ++collector_index_;  // fail over to the next collector, if there is one
          schedule_reconnect();
          co_return;
        }

        ++stats_.sessions;
        stats_.connected = true;
        backoff_ = options_.initial_backoff;
        log::info(
            "forward: connected to " + s->peer +
            (s->zstd             ? " (zstd batches)"
             : options_.compress ? " (the collector does not read zstd: plain batches)"
                                 : "") +
            (s->fixed_only ? " (the collector does not read compact batches: re-encoded)" : "") +
            (s->packed ? "" : " (the collector does not read packed batches: unpacked)") +
            "; collector holds up to batch " + std::to_string(collector_has) + ", spool has " +
            std::to_string(spool_.acked_seq()) + " acked of " + std::to_string(spool_.last_seq()));
        if (collector_has > spool_.last_seq()) {
          // The collector knows later batches than this agent ever wrote: the agent's state
          // was lost. Continue above it, or new batches would be taken for duplicates.
          if (on_ahead_) on_ahead_(collector_has);
        }
        if (collector_has > spool_.acked_seq()) {
          (void)spool_.ack(std::min(collector_has, spool_.last_seq()));
        }

        // Reader: applies acks as they come.
        asio::co_spawn(
            io_,
            [this, s]() -> awaitable<void> {
              std::vector<std::byte> in;
              wire::FrameHeader rh;
              while (co_await read_frame(*s->stream, rh, in)) {
                std::uint64_t acked = 0;
                if (rh.type != wire::FrameType::kAck ||
                    wire::decode_sequence(in, acked) != wire::DecodeError::kOk)
                  break;
                ++stats_.acks;
                while (!s->in_flight.empty() && s->in_flight.front() <= acked)
                  s->in_flight.pop_front();
                if (acked > spool_.acked_seq() && acked <= spool_.last_seq()) {
                  if (auto st = spool_.ack(acked); !st) log::error("spool: " + st.message());
                  if (drained() && on_drained_) on_drained_();
                }
                s->wake.cancel();
              }
              s->close();
            },
            TaskExit("forward: ack reader", TaskExit::kFatal));

        // Writer: streams spooled batches after the acked cursor, max_in_flight at a time.
        std::uint64_t sent_upto = spool_.acked_seq();
        std::uint64_t seq = 0;
        if (drained() && on_drained_) on_drained_();
        while (!s->closed) {
          if (s->in_flight.size() < options_.max_in_flight &&
              spool_.read_next(sent_upto, payload, seq)) {
            if (on_taken_) on_taken_();
            // Only batches on disk are sent: after a power loss the spool cannot come back
            // with fewer batches than the collector has seen, so sequences never repeat.
            // Group commit: wait out the interval since the last sync, so the one sync covers
            // every batch appended meanwhile. The batch read stays in hand while waiting (read
            // again, it would come from disk: the spool hands each batch from memory once).
            while (seq > synced_upto_ && !s->closed) {
              const auto due = last_sync_ + options_.group_commit;
              if (const auto now = std::chrono::steady_clock::now(); now < due) {
                co_await wait_for(s->wake, due - now);
                continue;
              }
              last_sync_ = std::chrono::steady_clock::now();
              if (auto st = spool_.sync(); !st) {
                log::error("spool: " + st.message() + "; holding batches until it syncs");
                co_await wait_for(s->wake, std::chrono::seconds(1));
                continue;
              }
              synced_upto_ = spool_.last_seq();
            }
            if (s->closed) break;  // the batch stays in the spool for the next session
            frame.clear();
            std::span<const std::byte> batch = payload;
            std::uint16_t flags = 0;
            if (wire::is_packed(payload)) {
              if (s->packed) {
                flags = wire::kFlagLz4;
              } else if (const auto e = wire::unpack(payload, unpacked, wire::kMaxPayload);
                         e == wire::DecompressError::kOk) {
                // A collector that does not read packed batches gets the batch itself.
                batch = unpacked;
                ++stats_.batches_unpacked;
              } else {
                // As below: the spool's CRC vouched for these bytes, so this is a bug.
                log::error("forward: batch " + std::to_string(seq) +
                           " does not unpack: " + wire::to_string(e));
              }
            }
            if (s->fixed_only && flags == 0 &&
                wire::batch_encoding(batch) == wire::Encoding::kCompact) {
              // The spool's CRC vouched for these bytes, so a batch that does not decode is
              // this agent's bug: sent as it is, the collector refuses and counts it.
              if (const auto e = wire::to_fixed(batch, fixed); e == wire::DecodeError::kOk) {
                batch = fixed;
                ++stats_.batches_reencoded;
              } else {
                log::error("forward: batch " + std::to_string(seq) +
                           " does not decode for re-encoding: " + wire::to_string(e));
              }
            }
            stats_.batch_bytes +=
                flags == wire::kFlagLz4 ? wire::unpacked_size(batch) : batch.size();
            if (flags == 0 && s->zstd && s->zstd->compress(batch, packed)) {
              batch = packed;
              flags = wire::kFlagZstd;
            }
            // The header goes out with the payload's first bytes (one whole TLS record), the
            // rest from the batch's own buffer: the payload is not copied into a frame, and
            // both go in one write.
            wire::encode_frame_head(wire::FrameType::kBatch, batch, kFrameHead, frame, flags);
            const std::span<const std::byte> rest = batch.subspan(frame.size() - wire::kHeaderSize);
            if (!co_await write_all(*s->stream, frame, rest, ec)) break;
            s->in_flight.push_back(seq);
            sent_upto = seq;
            ++stats_.batches_sent;
            stats_.bytes_sent += wire::kHeaderSize + batch.size();
            continue;
          }
          co_await wait_for(s->wake, std::chrono::seconds(5));
        }
        s->close();
        stats_.connected = false;
        if (session_ == s) session_.reset();
        if (!stopped_) {
          log::warning("forward: lost the session with " + s->peer + "; reconnecting");
          schedule_reconnect();
        }
      },
      TaskExit("forward: session", TaskExit::kFatal));
}

}  // namespace citywatch::agent
