using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Postback.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class InboundLogRetention : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "ResolvePending",
                table: "imported_skus",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.CreateIndex(
                name: "IX_inbound_log_ReceivedAt",
                table: "inbound_log",
                column: "ReceivedAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_inbound_log_ReceivedAt",
                table: "inbound_log");

            migrationBuilder.DropColumn(
                name: "ResolvePending",
                table: "imported_skus");
        }
    }
}
