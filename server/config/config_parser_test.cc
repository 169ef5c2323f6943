#include "server/config/config_parser.h"

#include <gtest/gtest.h>

namespace warren::config {
namespace {

TEST(ConfigParserTest, KeysValuesCommentsAndBlankLines) {
  auto parsed = ParseConfig(
      "# Warren\n"
      "\n"
      "listeners.tcp.default = 127.0.0.1:5673\n"
      "  heartbeat=30   # seconds\r\n"
      "\tdefault_pass = two words\n"
      "log.console.level = debug");
  ASSERT_TRUE(parsed) << parsed.error().text;
  ASSERT_EQ(parsed->entries.size(), 4u);
  EXPECT_EQ(parsed->entries[0].key, "listeners.tcp.default");
  EXPECT_EQ(parsed->entries[0].value, "127.0.0.1:5673");
  EXPECT_EQ(parsed->entries[0].line, 3);
  EXPECT_EQ(parsed->entries[1].value, "30");
  EXPECT_EQ(parsed->entries[1].line, 4);
  EXPECT_EQ(parsed->entries[2].value, "two words");
  EXPECT_EQ(parsed->entries[3].value, "debug");  // no newline at the end
  EXPECT_TRUE(parsed->warnings.empty());
}

TEST(ConfigParserTest, AHashStartsACommentAnywhereAsInCuttlefish) {
  auto parsed = ParseConfig("default_pass = abc#def\n");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->entries[0].value, "abc");
}

TEST(ConfigParserTest, ValuesKeepQuotesAndEqualSigns) {
  auto parsed = ParseConfig("default_pass = \"a=b\"\n");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->entries[0].value, "\"a=b\"");
}

TEST(ConfigParserTest, SyntaxErrorsNameTheLine) {
  struct Case {
    const char* text;
    int line;
    const char* key;
    const char* what;
  };
  for (const Case& c : {Case{"heartbeat = 1\nnot a setting\n", 2, "", "expected `key = value`"},
                        Case{"= 5\n", 1, "", "invalid key"},
                        Case{"heart beat = 5\n", 1, "", "invalid key"},
                        Case{"a..b = 5\n", 1, "", "invalid key"},
                        Case{".a = 5\n", 1, "", "invalid key"},
                        Case{"a. = 5\n", 1, "", "invalid key"},
                        Case{"a\\.b = 5\n", 1, "", "invalid key"},
                        Case{"\n\nheartbeat =   # none\n", 3, "heartbeat", "no value"},
                        Case{"default_pass = a\x01z\n", 1, "default_pass", "control character"}}) {
    auto parsed = ParseConfig(c.text);
    ASSERT_FALSE(parsed) << c.text;
    EXPECT_EQ(parsed.error().line, c.line) << c.text;
    EXPECT_EQ(parsed.error().key, c.key) << c.text;
    EXPECT_NE(parsed.error().text.find(c.what), std::string::npos) << c.text << ": " << parsed.error().text;
  }
  auto nul = ParseConfig(std::string_view("default_pass = a\0z\n", 19));
  ASSERT_FALSE(nul);
  EXPECT_NE(nul.error().text.find("control character"), std::string::npos);
}

TEST(ConfigParserTest, ADuplicateKeyKeepsTheLastValueAndWarns) {
  auto parsed = ParseConfig("heartbeat = 10\nframe_max = 8192\nheartbeat = 20\n");
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->entries.size(), 2u);
  EXPECT_EQ(parsed->entries[0].key, "heartbeat");
  EXPECT_EQ(parsed->entries[0].value, "20");
  EXPECT_EQ(parsed->entries[0].line, 3);
  ASSERT_EQ(parsed->warnings.size(), 1u);
  EXPECT_EQ(FormatProblem("w.conf", parsed->warnings[0]), "w.conf:1: heartbeat: set again on line 3, which wins");
}

TEST(ConfigParserTest, FileSizeLimit) {
  std::string text;
  while (text.size() < kMaxConfigBytes) text += "# a comment line of sixty-four bytes, repeated up to the limit\n";
  text.resize(kMaxConfigBytes - 1);
  text += "\n";
  EXPECT_TRUE(ParseConfig(text));
  text += "\n";
  auto parsed = ParseConfig(text);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().line, 0);
  EXPECT_NE(parsed.error().text.find("larger than 1048576 bytes"), std::string::npos);
}

TEST(ConfigParserTest, LineLengthLimit) {
  const std::string key = "load_definitions = ";
  EXPECT_TRUE(ParseConfig(key + std::string(kMaxLineBytes - key.size(), 'x') + "\n"));
  auto parsed = ParseConfig("heartbeat = 1\n" + key + std::string(kMaxLineBytes - key.size() + 1, 'x') + "\n");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().line, 2);
  EXPECT_NE(parsed.error().text.find("longer than"), std::string::npos);
}

TEST(ConfigParserTest, KeyCountLimit) {
  std::string text;
  for (size_t i = 0; i < kMaxConfigEntries; ++i) text += "k" + std::to_string(i) + " = 1\n";
  EXPECT_TRUE(ParseConfig(text));
  EXPECT_TRUE(ParseConfig(text + "k0 = 2\n"));  // a duplicate adds no key
  auto parsed = ParseConfig(text + "one_more = 1\n");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().line, static_cast<int>(kMaxConfigEntries) + 1);
  EXPECT_NE(parsed.error().text.find("more than 1000 keys"), std::string::npos);
}

TEST(ConfigParserTest, FormatProblemAndQuote) {
  EXPECT_EQ(FormatProblem("warren.conf", {12, "heartbeat", "\"abc\" is not an integer"}),
            "warren.conf:12: heartbeat: \"abc\" is not an integer");
  EXPECT_EQ(FormatProblem("warren.conf", {0, "", "too large"}), "warren.conf: too large");
  EXPECT_EQ(Quote("a\"b\x01"), "\"a\\\"b\\x01\"");
  EXPECT_EQ(Quote(std::string(100, 'x')), "\"" + std::string(80, 'x') + "\"...");
}

}  // namespace
}  // namespace warren::config
