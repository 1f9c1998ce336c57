package eventstoretest

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// A tiny aggregate for testing the store without the real domain: a
// counter that adds numbers and refuses to go above a limit.

type counterState struct {
	Total int   `json:"total"`
	Adds  []int `json:"adds"`
}

type addCmd struct{ Values []int }

type added struct{ N int }

var errLimit = errors.New("counter limit")

func counterDecide(s counterState, c addCmd) ([]added, error) {
	var out []added
	total := s.Total
	for _, v := range c.Values {
		total += v
		if total > 1_000_000_000 {
			return nil, errLimit
		}
		if v != 0 {
			out = append(out, added{N: v})
		}
	}
	return out, nil
}

func counterApply(s counterState, e added) counterState {
	s.Total += e.N
	s.Adds = append(append([]int(nil), s.Adds...), e.N)
	return s
}

var counterAggregate = eventstore.Aggregate[counterState, addCmd, added]{
	Type: "counter", Decide: counterDecide, Apply: counterApply,
}

type counterCodec struct{}

func (counterCodec) EncodeEvent(e added) (string, []byte, error) {
	b, err := json.Marshal(map[string]int{"n": e.N})
	return "Added", b, err
}

func (counterCodec) DecodeEvent(typ string, data []byte) (added, error) {
	if typ != "Added" {
		return added{}, fmt.Errorf("unknown event type %q", typ)
	}
	var m map[string]int
	if err := json.Unmarshal(data, &m); err != nil {
		return added{}, err
	}
	return added{N: m["n"]}, nil
}

func (counterCodec) EncodeState(s counterState) ([]byte, error) { return json.Marshal(s) }

func (counterCodec) DecodeState(b []byte) (counterState, error) {
	var s counterState
	err := json.Unmarshal(b, &s)
	return s, err
}

func (counterCodec) StateVersion() int32 { return 1 }
