#include "agent/flow/flow_types.h"

#include <arpa/inet.h>

#include <cstring>

namespace citywatch::agent::flow {

const char* to_string(FlowFormat f) {
  switch (f) {
    case FlowFormat::kNetflowV5:
      return "netflow_v5";
    case FlowFormat::kNetflowV9:
      return "netflow_v9";
    case FlowFormat::kIpfix:
      return "ipfix";
    case FlowFormat::kSflow:
      return "sflow";
  }
  return "unknown";
}

bool parse_format(const char* name, FlowFormat& out) {
  for (FlowFormat f :
       {FlowFormat::kNetflowV5, FlowFormat::kNetflowV9, FlowFormat::kIpfix, FlowFormat::kSflow})
    if (std::strcmp(name, to_string(f)) == 0) {
      out = f;
      return true;
    }
  return false;
}

const char* to_string(FlowError e) {
  switch (e) {
    case FlowError::kOk:
      return "ok";
    case FlowError::kUnknownVersion:
      return "unknown_version";
    case FlowError::kFormatNotEnabled:
      return "format_not_enabled";
    case FlowError::kTruncatedHeader:
      return "truncated_header";
    case FlowError::kBadRecordCount:
      return "bad_record_count";
    case FlowError::kBadSetLength:
      return "bad_set_length";
    case FlowError::kBadMessageLength:
      return "bad_message_length";
    case FlowError::kBadTemplate:
      return "bad_template";
    case FlowError::kTemplateLimit:
      return "template_limit";
    case FlowError::kTruncatedRecord:
      return "truncated_record";
    case FlowError::kTemplateMissing:
      return "template_missing";
    case FlowError::kPendingTooLarge:
      return "pending_too_large";
    case FlowError::kSflowBadAddress:
      return "sflow_bad_address";
    case FlowError::kSflowTruncatedSample:
      return "sflow_truncated_sample";
    case FlowError::kSflowTooManySamples:
      return "sflow_too_many_samples";
    case FlowError::kCount:
      break;
  }
  return "unknown";
}

bool parse_ip(const std::string& text, IpAddr& out) {
  std::uint8_t b[16];
  if (inet_pton(AF_INET, text.c_str(), b) == 1) {
    out = IpAddr::v4(b);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), b) == 1) {
    out = IpAddr::v6(b);
    return true;
  }
  return false;
}

}  // namespace citywatch::agent::flow
