module childcover

go 1.26
