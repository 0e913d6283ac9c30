// The agent↔collector wire protocol, version 1 (docs/wire-protocol.md is the specification).
//
// A TLS stream carries frames: a 16-byte header (magic, version, type, flags, payload
// length, CRC32C of the payload) and a payload. The agent opens with HELLO, the collector
// answers HELLO_ACK with the last sequence it holds durably for that agent, then the agent
// streams BATCH frames (sequence number + records) and the collector answers each with a
// cumulative ACK once the batch is durable. Every decoder here takes untrusted bytes, checks
// every bound and returns a result code; none throws, none reads out of bounds.
//
// Thread-safety: free functions and a BatchEncoder that one owner uses at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/record.h"
#include "common/record_batch.h"

namespace citywatch::wire {

inline constexpr std::uint32_t kMagic = 0x50545743;  // "CWTP" as little-endian bytes
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::uint32_t kMaxPayload = 16u << 20;  // larger frames are refused unread
inline constexpr std::uint32_t kMaxRecordsPerBatch = 1u << 20;
// The most a BATCH's records may weigh decoded, each at its size in a RecordBatch
// (RecordBatch::record_bytes: an SNMP trap takes 664 bytes there from as few as 15 on the
// wire). Above it the batch is refused (`decoded_too_large`), so that a 16 MiB frame cannot
// make a collector hold gigabytes. An agent's batch (about 1 MiB unpacked, at most 100,000
// records) weighs under 50 MiB.
inline constexpr std::size_t kMaxDecodedBytes = std::size_t{64} << 20;

enum class FrameType : std::uint8_t {
  kHello = 1,     // agent → collector: agent id, segment, software version
  kHelloAck = 2,  // collector → agent: last durable sequence for this agent
  kBatch = 3,     // agent → collector: sequence + records
  kAck = 4,       // collector → agent: every batch ≤ sequence is durable
  kError = 5,     // either way, before closing: code + text
};

// Why a frame or payload was refused. The names are the `reason` label of
// citywatch_collector_frames_rejected_total, so they are stable.
enum class DecodeError : std::uint8_t {
  kOk = 0,
  kBadMagic,
  kBadVersion,
  kBadType,
  kTooLarge,
  kBadChecksum,
  kTruncated,      // payload ends inside a field
  kTrailingBytes,  // payload longer than its content
  kBadRecord,      // a record's fields are out of range
  kTooManyRecords,
  kBadString,
  kDecodedTooLarge,  // the records would weigh more than kMaxDecodedBytes decoded
};
const char* to_string(DecodeError e);

struct FrameHeader {
  FrameType type = FrameType::kError;
  std::uint16_t flags = 0;
  std::uint32_t length = 0;
  std::uint32_t checksum = 0;
};

// Parses and validates the fixed header (magic, version, type, length bound).
DecodeError decode_header(std::span<const std::byte, kHeaderSize> bytes, FrameHeader& out);
// Checks the payload against the header's length and checksum.
DecodeError verify_payload(const FrameHeader& header, std::span<const std::byte> payload);

// Frame flags (docs/wire-protocol.md, "Compression"). Version-1 receivers ignore flags, so
// the one bit in use is negotiated: on HELLO the agent offers zstd batches, on HELLO_ACK the
// collector accepts them, on BATCH it marks a payload that is one zstd frame.
inline constexpr std::uint16_t kFlagZstd = 0x0001;

// Record encodings of a BATCH payload (docs/wire-protocol.md, "Compact records"). Fixed is
// version 1's first layout; compact writes the same fields with 32- and 64-bit integers as
// varints and times as deltas: about half the bytes per flow, on the agent's disk and on the
// wire. A payload says which it holds (the top bit of its record count). Negotiated like
// zstd: the agent offers kFlagCompact on HELLO, a collector that reads compact batches sets
// it on HELLO_ACK, and an agent whose collector does not re-encodes its batches fixed.
enum class Encoding : std::uint8_t { kFixed, kCompact };
inline constexpr std::uint16_t kFlagCompact = 0x0002;
// Packed batches (common/batch_compression.h; docs/wire-protocol.md, "Packed batches"):
// negotiated like zstd; on BATCH it marks a payload that is one packed batch.
inline constexpr std::uint16_t kFlagLz4 = 0x0004;

// Appends header + payload to out.
void encode_frame(FrameType type, std::span<const std::byte> payload, std::vector<std::byte>& out,
                  std::uint16_t flags = 0);
// Appends the header of the frame for the whole payload, and only the payload's first
// min(head, size) bytes: the sender writes the rest from where it lies (the agent does not
// copy its batches into frames).
void encode_frame_head(FrameType type, std::span<const std::byte> payload, std::size_t head,
                       std::vector<std::byte>& out, std::uint16_t flags = 0);

// HELLO: who the agent says it is. The collector checks agent_id against the certificate.
// stream_id names the agent's spool: it is drawn at random when a spool is created, so an
// agent whose spool was lost (a reinstall, a wiped disk) starts a new sequence space
// instead of having its new batches taken for ones the collector already holds.
struct Hello {
  ShortName agent_id;
  ShortName segment;
  ShortName software;
  std::uint64_t stream_id = 0;
};
void encode_hello(const Hello& hello, std::vector<std::byte>& payload);
DecodeError decode_hello(std::span<const std::byte> payload, Hello& out);

// HELLO_ACK and ACK carry one sequence number.
void encode_sequence(std::uint64_t seq, std::vector<std::byte>& payload);
DecodeError decode_sequence(std::span<const std::byte> payload, std::uint64_t& seq);

// ERROR: a code and a human-readable reason.
enum class ErrorCode : std::uint16_t {
  kProtocol = 1,
  kAgentIdMismatch = 2,
  kUnknownAgent = 3,
};
void encode_error(ErrorCode code, std::string_view text, std::vector<std::byte>& payload);

// Builds one BATCH payload. Reuses its buffer across batches. The sequence number is given
// at finish(), so a batch being filled can still be numbered after the collector's answer.
class BatchEncoder {
 public:
  void begin(Encoding encoding = Encoding::kCompact);
  void add(const Record& record);
  // The same for a body without a Record around it (the agent's hot path: no 776-byte
  // Record is filled and copied per flow or packet event). Bytes identical to add(Record).
  void add(std::int64_t event_time_ns, const FlowRecord& flow);
  void add(std::int64_t event_time_ns, const PacketEvent& event);
  std::uint32_t count() const { return count_; }
  std::size_t size() const { return used_; }
  // The finished payload; valid until the next begin().
  std::span<const std::byte> finish(std::uint64_t seq);
  // finish(seq), handing the payload over instead of lending it: `out` gets the encoder's
  // buffer, cut to the payload, and the encoder keeps `out`'s old buffer (its capacity; the
  // contents do not matter) for the next begin(). The agent spools its batches this way:
  // a batch is not copied between the encoder and the spool, and buffers go round.
  void finish_into(std::uint64_t seq, std::vector<std::byte>& out);

 private:
  template <typename Body>
  void add_body(RecordKind kind, std::int64_t event_time_ns, const Body& body);

  std::vector<std::byte> buf_;  // capacity; only the first used_ bytes are the batch
  std::size_t used_ = 0;
  std::uint32_t count_ = 0;
  Encoding encoding_ = Encoding::kCompact;
  std::int64_t prev_time_ns_ = 0;  // compact: times are deltas from the record before
};

// Renumbers a finished BATCH payload (a capture thread encodes its batches with sequence 0;
// the agent's main thread numbers them as it spools them). The payload must be at least a
// batch header long.
void set_batch_sequence(std::span<std::byte> payload, std::uint64_t seq);

// Reads the sequence number of a BATCH payload without decoding its records.
DecodeError peek_batch_sequence(std::span<const std::byte> payload, std::uint64_t& seq);

// The encoding of a BATCH payload's records (kFixed if it is too short to say).
Encoding batch_encoding(std::span<const std::byte> payload);
// Re-encodes a BATCH payload with fixed records (same sequence, same records, in order) into
// out: for a collector that does not read compact batches. Fails as decode_batch() does.
DecodeError to_fixed(std::span<const std::byte> payload, std::vector<std::byte>& out);

// Decodes a BATCH payload. Records are appended to out with agent and segment set from the
// session (the wire does not repeat them per record). Records of a kind this version does
// not know are skipped and counted in unknown_records (forward compatibility). On error, out
// is left as it was.
DecodeError decode_batch(std::span<const std::byte> payload, const ShortName& agent,
                         const ShortName& segment, std::uint64_t& seq, std::vector<Record>& out,
                         std::uint32_t& unknown_records);
// The same into a RecordBatch (agent and segment are the batch's): what the collector keeps
// in memory, each kind at its own size.
DecodeError decode_batch(std::span<const std::byte> payload, std::uint64_t& seq, RecordBatch& out,
                         std::uint32_t& unknown_records);

}  // namespace citywatch::wire
