"""Config: the typed schema (`schema`, `train`), YAML + key=value loading (`raw`, `load`), renamed
keys (`deprecations`) and the generated reference (`reference`). Import from the modules: this
package's own import stays free of the schema (which loads every registry)."""
