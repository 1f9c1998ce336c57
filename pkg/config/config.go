// Package config maps defaults, a config file, the environment and command
// line flags onto a typed configuration struct, in that order of precedence,
// and validates the result so that a bad value stops a process at start with
// a message that names the key.
//
// Keys are the struct's `mapstructure` tags joined with dots
// ("cql.hosts"). The environment variable for a key is the prefix plus the
// key in upper case with dots as underscores (ORDERSTREAM_CQL_HOSTS), and the
// flag is the key itself (--cql.hosts).
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of every environment variable read as config.
const EnvPrefix = "ORDERSTREAM"

// Validator is implemented by configuration structs that can check
// themselves. Keys in the returned FieldErrors are relative to the struct.
type Validator interface {
	Validate() error
}

// FieldError is a validation failure of one configuration key.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("config key %q: %s", e.Key, e.Msg) }

// Errorf returns a FieldError for key.
func Errorf(key, format string, args ...any) error {
	return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Nest prefixes the key of every FieldError inside err with prefix, so that a
// composed config reports "cql.hosts" where the CQL config said "hosts".
// Errors that are not FieldErrors are returned as they are.
func Nest(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) && fe == err {
		return &FieldError{Key: prefix + "." + fe.Key, Msg: fe.Msg}
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, Nest(prefix, e))
		}
		return errors.Join(out...)
	}
	return err
}

// Load fills cfg, a pointer to a struct already holding its defaults, from
// the config file named by --config (or ORDERSTREAM_CONFIG), the environment
// and the flags in args, then validates it. Unknown keys in the file, values
// of the wrong type and failed validation are errors naming the key.
// ErrHelp is returned when args ask for help; the usage was written to out.
func Load(name string, args []string, cfg any) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a pointer to a struct, got %T", cfg)
	}

	v := viper.New()
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	configFile := fs.String("config", os.Getenv(EnvPrefix+"_CONFIG"), "path to a YAML, JSON or TOML config file")

	var keys []string
	walk(rv.Elem(), "", func(key string, field reflect.Value, help string) {
		keys = append(keys, key)
		v.SetDefault(key, field.Interface())
		fs.String(key, "", help+" (default "+defaultString(field)+")")
	})

	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	if *configFile != "" {
		v.SetConfigFile(*configFile)
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("reading config file %s: %w", *configFile, err)
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, key := range keys {
		if err := v.BindEnv(key); err != nil {
			return fmt.Errorf("binding %s: %w", key, err)
		}
		// Only flags given on the command line override: an unset flag
		// must not hide the file and the environment behind an empty string.
		if f := fs.Lookup(key); f.Changed {
			v.Set(key, f.Value.String())
		}
	}

	decode := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))
	if err := v.UnmarshalExact(cfg, decode); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if val, ok := cfg.(Validator); ok {
		if err := val.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Keys lists the configuration keys of cfg, a struct or a pointer to one.
func Keys(cfg any) []string {
	rv := reflect.Indirect(reflect.ValueOf(cfg))
	var keys []string
	walk(rv, "", func(key string, _ reflect.Value, _ string) { keys = append(keys, key) })
	return keys
}

// walk calls fn for every leaf field of a struct, by its dotted key. A field
// tagged `mapstructure:",squash"` adds its fields at the current level.
func walk(v reflect.Value, prefix string, fn func(key string, field reflect.Value, help string)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if opts == "squash" {
			walk(fv, prefix, fn)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[time.Time]() {
			walk(fv, key, fn)
			continue
		}
		fn(key, fv, sf.Tag.Get("help"))
	}
}

func defaultString(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case time.Duration:
		return x.String()
	case string:
		return fmt.Sprintf("%q", x)
	default:
		return fmt.Sprint(x)
	}
}

// ReadToken returns token, or, when file is set, the content of file
// without surrounding white space (a mounted Kubernetes Secret), which must
// be at least min bytes. fileKey names file's configuration key in errors.
func ReadToken(token, file, fileKey string, min int) (string, error) {
	if file == "" {
		return token, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", Errorf(fileKey, "cannot read it: %v", err)
	}
	t := strings.TrimSpace(string(raw))
	if len(t) < min {
		return "", Errorf(fileKey, "the token must be at least %d bytes, got %d", min, len(t))
	}
	return t, nil
}
