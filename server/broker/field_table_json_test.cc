// JSON -> field table: the nesting and size limits shared with the codec, and the bounded parser.
#include "server/broker/field_table_json.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::broker {
namespace {

// A table `levels` containers deep in total (the table itself is level 1).
std::string Nested(int levels) {
  std::string s;
  for (int i = 0; i < levels; ++i) s += R"({"k":)";
  s += "1";
  for (int i = 0; i < levels; ++i) s += "}";
  return s;
}

TEST(FieldTableJsonTest, NestingLimitIsTheCodecs) {
  auto at_limit = FieldTableFromJson(nlohmann::json::parse(Nested(amqp::kMaxFieldNesting)));
  ASSERT_TRUE(at_limit.has_value()) << at_limit.error();
  // What is accepted decodes again (the store's decoder is the codec).
  std::string encoded;
  amqp::ByteWriter w(encoded);
  amqp::EncodeFieldTable(*at_limit, w);
  amqp::ByteReader r(encoded);
  amqp::FieldTable back;
  EXPECT_TRUE(amqp::DecodeFieldTable(r, &back));
  EXPECT_EQ(back, *at_limit);

  auto beyond = FieldTableFromJson(nlohmann::json::parse(Nested(amqp::kMaxFieldNesting + 1)));
  ASSERT_FALSE(beyond.has_value());
  EXPECT_NE(beyond.error().find("nested deeper than 64"), std::string::npos) << beyond.error();
  // Arrays count as levels too.
  std::string arrays = "{\"a\":" + std::string(amqp::kMaxFieldNesting, '[') + std::string(amqp::kMaxFieldNesting, ']') +
                       "}";
  EXPECT_FALSE(FieldTableFromJson(nlohmann::json::parse(arrays)).has_value());
}

TEST(FieldTableJsonTest, SizeCap) {
  nlohmann::json big = {{"k", std::string(kMaxJsonTableBytes, 'x')}};
  auto refused = FieldTableFromJson(big);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().find("larger than"), std::string::npos);
  EXPECT_TRUE(FieldTableFromJson({{"k", std::string(1000, 'x')}}).has_value());
  EXPECT_FALSE(FieldTableFromJson({{std::string(256, 'k'), 1}}).has_value());
}

TEST(FieldTableJsonTest, ParserRefusesDeepDocumentsWithoutRecursing) {
  auto deep = ParseJson(Nested(100000));
  ASSERT_FALSE(deep.has_value());
  EXPECT_NE(deep.error().find("nested deeper than"), std::string::npos) << deep.error();
  EXPECT_FALSE(ParseJson(std::string(100000, '[') + std::string(100000, ']')).has_value());
  EXPECT_TRUE(ParseJson(Nested(kMaxJsonDepth)).has_value());
  EXPECT_FALSE(ParseJson(Nested(kMaxJsonDepth + 1)).has_value());
  EXPECT_EQ(ParseJson("{").error(), "not valid JSON");
}

}  // namespace
}  // namespace warren::broker
