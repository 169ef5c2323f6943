#include "server/broker/direct_reply.h"

#include "server/amqp/properties.h"
#include "server/broker/vhost.h"

namespace warren::broker {

std::string DirectReplyRegistry::Register(std::string_view vhost, DirectReplyTarget* target) {
  std::string name;
  do {
    name = GenerateName(std::string(kDirectReplyToPrefix) + "g") + "." + GenerateName("");
  } while (targets_.contains(name));
  targets_.emplace(name, Entry{std::string(vhost), target});
  return name;
}

void DirectReplyRegistry::Unregister(std::string_view name) {
  auto it = targets_.find(name);
  if (it != targets_.end()) targets_.erase(it);
}

DirectReplyTarget* DirectReplyRegistry::Find(std::string_view vhost, std::string_view name) const {
  auto it = targets_.find(name);
  return it == targets_.end() || it->second.vhost != vhost ? nullptr : it->second.target;
}

MessageRef WithReplyTo(const Message& message, std::string_view reply_to) {
  amqp::BasicProperties props;
  if (!amqp::DecodeProperties(message.raw_properties(), &props)) return {};
  props.reply_to = std::string(reply_to);
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(props, w);
  MessageRef copy = Message::Create(message.exchange(), message.routing_key(), raw, message.body_size(), message.account());
  copy->FillBody(message.body());
  return copy;
}

}  // namespace warren::broker
