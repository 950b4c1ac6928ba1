package stats

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestColumnRefusesNonNumbers: a history column read back from JSON (the
// admin client's view of /api/history) must be an array of numbers and
// nulls; anything else is an error, not a column of zeros.
func TestColumnRefusesNonNumbers(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1}`:   "", // encoding/json's own *UnmarshalTypeError
		`[1,"two"]`: `strconv.ParseFloat: parsing "\"two\"": invalid syntax`,
		`[1,true]`:  `strconv.ParseFloat: parsing "true": invalid syntax`,
	} {
		c := Column{7}
		err := json.Unmarshal([]byte(in), &c)
		var te *json.UnmarshalTypeError
		if err == nil || want != "" && err.Error() != want || want == "" && !errors.As(err, &te) || len(c) != 1 || c[0] != 7 {
			t.Errorf("Unmarshal(%s) = %v, column %v; want %q and the column untouched", in, err, c, want)
		}
	}
}
