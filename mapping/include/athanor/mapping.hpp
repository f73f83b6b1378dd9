// athanor mapping: the Registry, classical and declarative mapping, the dynamic Record.
#pragma once

#include <athanor/mapping/declarative.hpp>
#include <athanor/mapping/mapper.hpp>
#include <athanor/mapping/record.hpp>
#include <athanor/mapping/registry.hpp>
