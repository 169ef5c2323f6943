// AMQP 0-9-1 protocol constants: frame types, reply codes (with RabbitMQ's names) and defaults.
#pragma once

#include <cstdint>
#include <string_view>

namespace warren::amqp {

inline constexpr uint8_t kFrameMethod = 1;
inline constexpr uint8_t kFrameHeader = 2;
inline constexpr uint8_t kFrameBody = 3;
inline constexpr uint8_t kFrameHeartbeat = 8;
inline constexpr uint8_t kFrameEnd = 0xCE;
inline constexpr size_t kFrameHeaderSize = 7;  // type u8, channel u16, size u32
inline constexpr size_t kFrameOverhead = 8;    // header plus the frame-end octet
inline constexpr uint32_t kFrameMinSize = 4096;
inline constexpr std::string_view kProtocolHeader{"AMQP\x00\x00\x09\x01", 8};

inline constexpr uint16_t kClassBasic = 60;

namespace reply {
inline constexpr uint16_t kSuccess = 200;
inline constexpr uint16_t kContentTooLarge = 311;
inline constexpr uint16_t kNoRoute = 312;
inline constexpr uint16_t kNoConsumers = 313;
inline constexpr uint16_t kConnectionForced = 320;
inline constexpr uint16_t kInvalidPath = 402;
inline constexpr uint16_t kAccessRefused = 403;
inline constexpr uint16_t kNotFound = 404;
inline constexpr uint16_t kResourceLocked = 405;
inline constexpr uint16_t kPreconditionFailed = 406;
inline constexpr uint16_t kFrameError = 501;
inline constexpr uint16_t kSyntaxError = 502;
inline constexpr uint16_t kCommandInvalid = 503;
inline constexpr uint16_t kChannelError = 504;
inline constexpr uint16_t kUnexpectedFrame = 505;
inline constexpr uint16_t kResourceError = 506;
inline constexpr uint16_t kNotAllowed = 530;
inline constexpr uint16_t kNotImplemented = 540;
inline constexpr uint16_t kInternalError = 541;

// The reply-text prefix RabbitMQ uses for a code ("NOT_FOUND", ...).
constexpr std::string_view Name(uint16_t code) {
  switch (code) {
    case kSuccess: return "OK";
    case kContentTooLarge: return "CONTENT_TOO_LARGE";
    case kNoRoute: return "NO_ROUTE";
    case kNoConsumers: return "NO_CONSUMERS";
    case kConnectionForced: return "CONNECTION_FORCED";
    case kInvalidPath: return "INVALID_PATH";
    case kAccessRefused: return "ACCESS_REFUSED";
    case kNotFound: return "NOT_FOUND";
    case kResourceLocked: return "RESOURCE_LOCKED";
    case kPreconditionFailed: return "PRECONDITION_FAILED";
    case kFrameError: return "FRAME_ERROR";
    case kSyntaxError: return "SYNTAX_ERROR";
    case kCommandInvalid: return "COMMAND_INVALID";
    case kChannelError: return "CHANNEL_ERROR";
    case kUnexpectedFrame: return "UNEXPECTED_FRAME";
    case kResourceError: return "RESOURCE_ERROR";
    case kNotAllowed: return "NOT_ALLOWED";
    case kNotImplemented: return "NOT_IMPLEMENTED";
    case kInternalError: return "INTERNAL_ERROR";
    default: return "UNKNOWN";
  }
}

// Hard errors close the whole connection; the rest close only the channel.
constexpr bool IsHardError(uint16_t code) {
  return code == kConnectionForced || code == kInvalidPath || code >= 500;
}
}  // namespace reply

}  // namespace warren::amqp
