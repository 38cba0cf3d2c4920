"""Every part of the public schema carries a description: clients read them in GraphiQL and in
the types codegen writes. Checked on the committed schema.graphql (kept in step with the code by
`chattergram export-schema --check`)."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    build_schema,
)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Coordinates (Type, Type.field, Type.field(arg:), Enum.VALUE) that lack a description."""
    missing: list[str] = []

    def check(coordinate: str, description: str | None) -> None:
        if not (description or "").strip():
            missing.append(coordinate)

    for name, named in sorted(schema.type_map.items()):
        if name.startswith("__") or name in BUILT_IN_SCALARS:
            continue  # introspection types and the spec's scalars are described by the spec
        check(name, named.description)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                check(f"{name}.{field_name}", field.description)
                for arg_name, arg in field.args.items():
                    check(f"{name}.{field_name}({arg_name}:)", arg.description)
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                check(f"{name}.{field_name}", input_field.description)
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                check(f"{name}.{value_name}", value.description)
    return missing


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    missing = undescribed(build_schema(SCHEMA_FILE.read_text()))
    assert not missing, f"{len(missing)} schema elements without a description:\n" + "\n".join(missing)


def test_the_check_sees_what_is_missing() -> None:
    bare = build_schema('"""Q."""\ntype Query { me(id: ID): Kind }\nenum Kind { A }')
    assert undescribed(bare) == ["Kind", "Kind.A", "Query.me", "Query.me(id:)"]


def test_scalars_name_their_specification() -> None:
    schema = build_schema(SCHEMA_FILE.read_text())
    date_time = schema.get_type("DateTime")
    assert isinstance(date_time, GraphQLScalarType)
    assert date_time.specified_by_url == "https://datatracker.ietf.org/doc/html/rfc3339"
