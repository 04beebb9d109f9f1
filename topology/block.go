package topology

import (
	"encoding/json"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

const blockAll = "all"

// MarshalJSON encodes "all" or the list of set names.
func (b Block) MarshalJSON() ([]byte, error) {
	if b.All {
		return json.Marshal(blockAll)
	}
	sets := b.Sets
	if sets == nil {
		sets = []string{}
	}
	return json.Marshal(sets)
}

// UnmarshalJSON accepts exactly the string "all" or an array of strings.
func (b *Block) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		if s != blockAll {
			return fmt.Errorf(`block must be "all" or a list of destination-set names, got %q`, s)
		}
		*b = Block{All: true}
		return nil
	}
	var sets []string
	if err := json.Unmarshal(data, &sets); err != nil {
		return errors.New(`block must be "all" or a list of destination-set names`)
	}
	if sets == nil {
		return errors.New(`block must be "all" or a list of destination-set names, not null`)
	}
	*b = Block{Sets: sets}
	return nil
}

// MarshalYAML mirrors MarshalJSON.
func (b Block) MarshalYAML() (any, error) {
	if b.All {
		return blockAll, nil
	}
	if b.Sets == nil {
		return []string{}, nil
	}
	return b.Sets, nil
}

// UnmarshalYAML mirrors UnmarshalJSON.
func (b *Block) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		if node.Value != blockAll {
			return fmt.Errorf(`line %d: block must be "all" or a list of destination-set names, got %q`, node.Line, node.Value)
		}
		*b = Block{All: true}
		return nil
	case yaml.SequenceNode:
		sets := []string{}
		if err := node.Decode(&sets); err != nil {
			return fmt.Errorf("line %d: block: %w", node.Line, err)
		}
		*b = Block{Sets: sets}
		return nil
	default:
		return fmt.Errorf(`line %d: block must be "all" or a list of destination-set names`, node.Line)
	}
}
