// athanor core: schema at run time and the SQL expression language.
#pragma once

#include <athanor/core/compiled.hpp>
#include <athanor/core/connectable.hpp>
#include <athanor/core/custom_types.hpp>
#include <athanor/core/dialect.hpp>
#include <athanor/core/elements.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/migration.hpp>
#include <athanor/core/schema.hpp>
#include <athanor/core/selectable.hpp>
#include <athanor/core/types.hpp>
#include <athanor/core/value.hpp>

// The whole of nlohmann::json, so that `nlohmann::json j = metadata.to_json();` and JSON
// members work with this one include (the module headers need only its forward declarations).
#include <nlohmann/json.hpp>
