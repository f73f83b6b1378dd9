// MetaData::from_json on arbitrary documents: a MetaData or an ArgumentError. An accepted
// document survives to_json/from_json unchanged, and creating it on a database holding a
// canary table never touches the canary (no smuggled statement).
#include <athanor/athanor.hpp>

#include <nlohmann/json.hpp>

#include <cstdlib>

namespace sa = athanor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    nlohmann::json doc = nlohmann::json::parse(data, data + size, nullptr, false);
    if (doc.is_discarded()) return 0;
    sa::MetaData md;
    try {
        md = sa::MetaData::from_json(doc);
    } catch (const sa::ArgumentError&) {
        return 0;
    }
    nlohmann::json once;
    try {
        once = md.to_json();
    } catch (const sa::Error&) {
        return 0;  // e.g. a foreign key cycle cannot be sorted
    }
    if (sa::MetaData::from_json(once).to_json() != once) std::abort();
    auto engine = sa::create_engine("sqlite://");
    {
        auto c = engine->connect();
        c.execute(sa::text("CREATE TABLE zz_canary (id INTEGER PRIMARY KEY)"));
        c.commit();
    }
    try {
        md.create_all(*engine);
    } catch (const sa::Error&) {
    }
    auto c = engine->connect();
    if (c.execute(sa::text("SELECT count(*) FROM sqlite_master WHERE name = 'zz_canary'")).scalar<std::int64_t>() != 1)
        std::abort();
    return 0;
}
