// athanor core: schema at run time and the SQL expression language.
#pragma once

#include <athanor/core/compiled.hpp>
#include <athanor/core/connectable.hpp>
#include <athanor/core/dialect.hpp>
#include <athanor/core/elements.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>
#include <athanor/core/selectable.hpp>
#include <athanor/core/types.hpp>
#include <athanor/core/value.hpp>
