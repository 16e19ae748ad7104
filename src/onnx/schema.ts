/**
 * The ONNX protobuf schema, as protobuf text, parsed by protobufjs at load time.
 *
 * Why not the `onnx-proto` npm package's generated code directly: it is ONNX 1.10 and drops
 * every field it does not know. This schema is onnx-proto's (ONNX 1.10) extended with the
 * fields added since, up to ONNX 1.18 (marked "since"). Fields newer still, which this schema
 * does not know either, are kept as raw bytes by the codec (see codec.ts), so nothing is lost.
 * `test/onnx/schema.test.ts` checks that this schema agrees with onnx-proto where both know a field.
 */
export const ONNX_PROTO = String.raw`
syntax = "proto3";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11; TYPE_PROTO = 13;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; SPARSE_TENSORS = 12; TYPE_PROTOS = 14;
  }
  string name = 1;
  string ref_attr_name = 21;
  string doc_string = 13;
  AttributeType type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  GraphProto g = 6;
  SparseTensorProto sparse_tensor = 22;
  TypeProto tp = 14;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  repeated SparseTensorProto sparse_tensors = 23;
  repeated TypeProto type_protos = 15;
}

message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
  string doc_string = 3;
  repeated StringStringEntryProto metadata_props = 4;            // since 1.16
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  string overload = 8;                                           // since 1.16
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
  repeated StringStringEntryProto metadata_props = 9;            // since 1.16
  repeated NodeDeviceConfigurationProto device_configurations = 10; // since 1.18
}

message IntIntListEntryProto { int64 key = 1; repeated int64 value = 2; }          // since 1.18
message DeviceConfigurationProto { string name = 1; int32 num_devices = 2; repeated string device = 3; } // since 1.18
message SimpleShardedDimProto { int64 dim_value = 1; string dim_param = 2; int64 num_shards = 3; }      // since 1.18
message ShardedDimProto { int64 axis = 1; repeated SimpleShardedDimProto simple_sharding = 2; }        // since 1.18
message ShardingSpecProto {                                                                            // since 1.18
  string tensor_name = 1;
  repeated int64 device = 2;
  repeated IntIntListEntryProto index_to_device_group_map = 3;
  repeated ShardedDimProto sharded_dim = 4;
}
message NodeDeviceConfigurationProto {                                                                 // since 1.18
  string configuration_id = 1;
  repeated ShardingSpecProto sharding_spec = 2;
  int32 pipeline_stage = 3;
}

message TrainingInfoProto {
  GraphProto initialization = 1;
  GraphProto algorithm = 2;
  repeated StringStringEntryProto initialization_binding = 3;
  repeated StringStringEntryProto update_binding = 4;
}

message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
  repeated TrainingInfoProto training_info = 20;
  repeated FunctionProto functions = 25;
  repeated DeviceConfigurationProto configuration = 26;          // since 1.18
}

message StringStringEntryProto { string key = 1; string value = 2; }

message TensorAnnotation {
  string tensor_name = 1;
  repeated StringStringEntryProto quant_parameter_tensor_names = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  repeated SparseTensorProto sparse_initializer = 15;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
  repeated TensorAnnotation quantization_annotation = 14;
  repeated StringStringEntryProto metadata_props = 16;           // since 1.16
}

message TensorProto {
  enum DataLocation { DEFAULT = 0; EXTERNAL = 1; }
  message Segment { int64 begin = 1; int64 end = 2; }
  repeated int64 dims = 1;
  int32 data_type = 2;
  Segment segment = 3;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  string doc_string = 12;
  bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  DataLocation data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
  repeated StringStringEntryProto metadata_props = 16;           // since 1.16
}

message SparseTensorProto {
  TensorProto values = 1;
  TensorProto indices = 2;
  repeated int64 dims = 3;
}

message TensorShapeProto {
  message Dimension {
    oneof value { int64 dim_value = 1; string dim_param = 2; }
    string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  message Sequence { TypeProto elem_type = 1; }
  message Map { int32 key_type = 1; TypeProto value_type = 2; }
  message Optional { TypeProto elem_type = 1; }
  message SparseTensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  message Opaque { string domain = 1; string name = 2; }
  oneof value {
    Tensor tensor_type = 1;
    Sequence sequence_type = 4;
    Map map_type = 5;
    Optional optional_type = 9;
    SparseTensor sparse_tensor_type = 8;
    Opaque opaque_type = 7;
  }
  string denotation = 6;
}

message OperatorSetIdProto { string domain = 1; int64 version = 2; }

message FunctionProto {
  string name = 1;
  repeated string input = 4;
  repeated string output = 5;
  repeated string attribute = 6;
  repeated AttributeProto attribute_proto = 11;                  // since 1.13
  repeated NodeProto node = 7;
  string doc_string = 8;
  repeated OperatorSetIdProto opset_import = 9;
  string domain = 10;
  string overload = 13;                                          // since 1.16
  repeated ValueInfoProto value_info = 12;                       // since 1.16
  repeated StringStringEntryProto metadata_props = 14;           // since 1.16
}

// Not part of ModelProto: the files of ONNX's backend test data (test_data_set_N/*.pb)
// hold a TensorProto, or one of these for sequence, map and optional values.
message SequenceProto {
  string name = 1;
  int32 elem_type = 2;
  repeated TensorProto tensor_values = 3;
  repeated SparseTensorProto sparse_tensor_values = 4;
  repeated SequenceProto sequence_values = 5;
  repeated MapProto map_values = 6;
  repeated OptionalProto optional_values = 7;
}
message MapProto {
  string name = 1;
  int32 key_type = 2;
  repeated int64 keys = 3;
  repeated bytes string_keys = 4;
  SequenceProto values = 5;
}
message OptionalProto {
  string name = 1;
  int32 elem_type = 2;
  TensorProto tensor_value = 3;
  SparseTensorProto sparse_tensor_value = 4;
  SequenceProto sequence_value = 5;
  MapProto map_value = 6;
  OptionalProto optional_value = 7;
}
`;
