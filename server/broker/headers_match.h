// Headers exchange matching, as RabbitMQ's rabbit_exchange_type_headers.
//
// The binding's arguments are the pattern; "x-match" selects the mode:
//   "all" (default)  every pattern entry must match a message header;
//   "any"            at least one pattern entry must match;
//   "all-with-x", "any-with-x"  the same, but pattern entries whose key starts with "x-" take part.
// In "all"/"any" mode pattern entries whose key starts with "x-" are ignored; "x-match" itself is
// always ignored. "all" with no remaining entries matches every message; "any" with none matches
// nothing. A message without headers is treated as having an empty header table.
//
// An entry matches when the message has a header with the same key and
//   - the pattern value is void ('V'): any value (presence test), or
//   - the values are equal under Erlang's `==`, which is what RabbitMQ evaluates. RabbitMQ
//     compares only the decoded values, not the wire types, so:
//       * all numbers compare by exact numeric value across types: int8 5 == uint32 5 ==
//         int64 5 == timestamp 5 == double 5.0 == float 5.0 (but 5 != 5.5, 0.1f != 0.1);
//       * long string 'S' and byte array 'x' compare equal when their bytes are equal;
//       * decimals are equal when scale and value are both equal (1.0 as {1,10} != {0,1});
//       * booleans equal only booleans; void equals only void;
//       * nested arrays and tables compare deeply *with* types (Erlang keeps {type, value}
//         inside them), using FieldValue::operator==; an empty array equals an empty table
//         (both are the Erlang empty list);
//       * values of different kinds (string vs number, bool vs number...) are never equal.
// Duplicate keys (invalid AMQP, but decodable): RabbitMQ stably sorts both tables by key and
// merges them, so the k-th pattern entry with key K is paired with the k-th header with key K
// (in wire order). HeadersMatch reproduces that pairing.
#pragma once

#include "server/amqp/field_table.h"

namespace warren::broker {

// True when `message_headers` (nullptr = no headers) satisfies the binding arguments.
bool HeadersMatch(const amqp::FieldTable& binding_args, const amqp::FieldTable* message_headers);

// False when the binding arguments carry an "x-match" that is not a long string equal to one of
// "all", "any", "all-with-x", "any-with-x" (RabbitMQ refuses such a binding with 406
// PRECONDITION_FAILED). Absent "x-match" is valid (mode "all"). Only the first "x-match" entry
// is considered, as RabbitMQ's table lookup does.
bool ValidXMatch(const amqp::FieldTable& binding_args);

}  // namespace warren::broker
